package node

import (
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Peer scoring. The one behaviour gossipsub can judge for us is the
// delivery of invalid messages (records our validator rejects): each one
// costs the forwarding peer heavily, and a peer below the graylist threshold
// is ignored. The other score components are left neutral because record
// rates on governance topics are low and bursty, which makes delivery-rate
// expectations misfire.
func peerScoreParams() *pubsub.PeerScoreParams {
	return &pubsub.PeerScoreParams{
		Topics:                      map[string]*pubsub.TopicScoreParams{},
		AppSpecificScore:            func(peer.ID) float64 { return 0 },
		IPColocationFactorWeight:    0,
		IPColocationFactorThreshold: 1,
		BehaviourPenaltyWeight:      -10,
		BehaviourPenaltyThreshold:   6,
		BehaviourPenaltyDecay:       pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:               time.Second,
		DecayToZero:                 0.01,
		RetainScore:                 10 * time.Minute,
	}
}

func peerScoreThresholds() *pubsub.PeerScoreThresholds {
	return &pubsub.PeerScoreThresholds{
		GossipThreshold:             -100,
		PublishThreshold:            -500,
		GraylistThreshold:           -1000,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 1,
	}
}

// topicScoreParams penalises invalid deliveries on a topic (P4): ten
// rejected records from one peer put it below the gossip threshold.
func topicScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight:                     1,
		TimeInMeshQuantum:               time.Second,
		TimeInMeshCap:                   1,
		FirstMessageDeliveriesDecay:     pubsub.ScoreParameterDecay(time.Hour),
		FirstMessageDeliveriesCap:       1,
		MeshMessageDeliveriesDecay:      pubsub.ScoreParameterDecay(time.Hour),
		MeshMessageDeliveriesCap:        1,
		MeshMessageDeliveriesThreshold:  1,
		MeshMessageDeliveriesWindow:     10 * time.Millisecond,
		MeshMessageDeliveriesActivation: time.Hour,
		MeshFailurePenaltyDecay:         pubsub.ScoreParameterDecay(time.Hour),
		InvalidMessageDeliveriesWeight:  -2,
		InvalidMessageDeliveriesDecay:   pubsub.ScoreParameterDecay(time.Hour),
	}
}
