package protocol

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
)

// Default taxonomy of a federation (DESIGN.md section 5).
var (
	// DefaultGroups are the stakeholder groups of a federation that names none.
	DefaultGroups = []string{"government", "private-sector", "civil-society", "technical-academic", "intergovernmental"}
	// DefaultRegions are the five UN regional groups.
	DefaultRegions = []string{"africa", "asia-pacific", "eastern-europe", "latin-america-caribbean", "western-europe-others"}
)

// Member is a member organisation as the genesis or an admission names it.
type Member struct {
	// Key is the member's 32-byte ed25519 public key.
	Key []byte `cbor:"key"`
	// Org is the organisation's name.
	Org string `cbor:"org"`
	// Group is the stakeholder group, one of the genesis groups.
	Group string `cbor:"group"`
	// Region is the region, one of the genesis regions.
	Region string `cbor:"region"`
	// Contact is an optional contact address or URL.
	Contact string `cbor:"contact"`
}

// Rules are the federation's governance parameters, fixed by its genesis.
type Rules struct {
	// AdmitEndorsements is how many member endorsements admit an applicant.
	AdmitEndorsements int `cbor:"admitEndorsements"`
	// AdmitGroups is how many distinct stakeholder groups those endorsers
	// must span.
	AdmitGroups int `cbor:"admitGroups"`
	// AdmitRegions is how many distinct regions those endorsers must span
	// (0: no regional condition).
	AdmitRegions int `cbor:"admitRegions"`
	// DecisionMinEndorsements is the default concurrent-majority threshold:
	// the least number of endorsements needed within every group and every
	// region that has members.
	DecisionMinEndorsements int `cbor:"decisionMinEndorsements"`
	// MinNoticeSeconds is the least notice, in seconds, before a
	// consultation or decision.
	MinNoticeSeconds int64 `cbor:"minNoticeSeconds"`
	// WitnessQuorum is how many distinct stakeholder groups' checkpoints
	// make a time public (0: DefaultWitnessQuorum; see Quorum). It is
	// omitted from the encoding when 0, so genesis records made before it
	// existed keep their CID.
	WitnessQuorum int `cbor:"witnessQuorum,omitempty"`
}

// DefaultRules are the rules of a federation that sets none.
var DefaultRules = Rules{
	AdmitEndorsements:       2,
	AdmitGroups:             2,
	AdmitRegions:            0,
	DecisionMinEndorsements: 1,
	MinNoticeSeconds:        14 * 24 * 3600,
}

// FounderSig is one founder's signature over the genesis.
type FounderSig struct {
	Key []byte `cbor:"key"`
	Sig []byte `cbor:"sig"`
}

// Genesis is the founding record of a federation. It is valid only when
// every founder has signed it; its CID is the network id.
type Genesis struct {
	Version     int          `cbor:"v"`
	Name        string       `cbor:"name"`
	Description string       `cbor:"description"`
	Groups      []string     `cbor:"groups"`
	Regions     []string     `cbor:"regions"`
	Founders    []Member     `cbor:"founders"`
	Rules       Rules        `cbor:"rules"`
	Created     int64        `cbor:"created"`
	Sigs        []FounderSig `cbor:"sigs"`
}

// genesisDomain separates genesis signatures from record signatures.
const genesisDomain = "clearinghouse-genesis"

// ErrGenesisIncomplete is returned by Genesis.Verify when a founder has not
// signed yet. The error text names the missing founders.
var ErrGenesisIncomplete = errors.New("protocol: genesis is not signed by every founder")

// SigningInput returns what each founder signs: the domain-prefixed
// canonical encoding of the genesis with an empty sigs list.
func (g *Genesis) SigningInput() ([]byte, error) {
	unsigned := *g
	unsigned.Sigs = nil
	b, err := encMode.Marshal(&unsigned)
	if err != nil {
		return nil, fmt.Errorf("protocol: encode genesis: %w", err)
	}
	return domainPrefixed(genesisDomain, b), nil
}

// Encode returns the canonical DAG-CBOR encoding of the genesis.
func (g *Genesis) Encode() ([]byte, error) {
	return encMode.Marshal(g)
}

// NetworkID returns the CID of the encoded genesis: the network id of the
// federation it founds. It is meaningful only for a verified genesis.
func (g *Genesis) NetworkID() (cid.Cid, error) {
	b, err := g.Encode()
	if err != nil {
		return cid.Undef, err
	}
	return RecordCID(b), nil
}

// DecodeGenesis parses a canonical genesis encoding. It checks the shape of
// the genesis (see CheckShape) but not the signatures; call Verify.
func DecodeGenesis(data []byte) (*Genesis, error) {
	if len(data) > MaxRecordSize {
		return nil, Errorf(ReasonOversize, "genesis is %d bytes, limit %d", len(data), MaxRecordSize)
	}
	var g Genesis
	if err := unmarshalCanonical(data, &g); err != nil {
		return nil, err
	}
	if err := g.CheckShape(); err != nil {
		return nil, err
	}
	return &g, nil
}

// CheckShape validates everything but the signatures: version, name,
// taxonomy, founders and rules.
func (g *Genesis) CheckShape() error {
	bad := func(format string, args ...any) error { return Errorf(ReasonBadBody, "genesis: "+format, args...) }
	if g.Version != Version {
		return Errorf(ReasonBadVersion, "genesis version %d, want %d", g.Version, Version)
	}
	if err := checkText("name", g.Name, 1, 200); err != nil {
		return bad("%v", err)
	}
	if err := checkText("description", g.Description, 0, 4000); err != nil {
		return bad("%v", err)
	}
	if err := checkTaxonomy("groups", g.Groups); err != nil {
		return bad("%v", err)
	}
	if err := checkTaxonomy("regions", g.Regions); err != nil {
		return bad("%v", err)
	}
	if len(g.Founders) == 0 {
		return bad("no founders")
	}
	seen := map[string]bool{}
	orgs := map[string]int{}
	for i, f := range g.Founders {
		if err := f.Check(g.Groups, g.Regions); err != nil {
			return bad("founders[%d]: %v", i, err)
		}
		if seen[string(f.Key)] {
			return bad("founders[%d]: key listed twice", i)
		}
		seen[string(f.Key)] = true
		k, _ := OrgKey(f.Org) // Check accepted the name
		if j, dup := orgs[k]; dup {
			return bad("founders[%d]: organisation %q is founders[%d] (%q): one organisation is one member", i, f.Org, j, g.Founders[j].Org)
		}
		orgs[k] = i
	}
	r := g.Rules
	switch {
	case r.AdmitEndorsements < 1:
		return bad("rules.admitEndorsements: must be >= 1")
	case r.AdmitGroups < 1 || r.AdmitGroups > len(g.Groups) || r.AdmitGroups > r.AdmitEndorsements:
		return bad("rules.admitGroups: must be between 1 and min(admitEndorsements, number of groups)")
	case r.AdmitRegions < 0 || r.AdmitRegions > len(g.Regions) || r.AdmitRegions > r.AdmitEndorsements:
		return bad("rules.admitRegions: must be between 0 and min(admitEndorsements, number of regions)")
	case r.DecisionMinEndorsements < 1:
		return bad("rules.decisionMinEndorsements: must be >= 1")
	case r.MinNoticeSeconds < 0:
		return bad("rules.minNoticeSeconds: must be >= 0")
	case r.WitnessQuorum < 0 || r.WitnessQuorum > len(g.Groups):
		return bad("rules.witnessQuorum: must be between 0 (default %d) and the number of groups", DefaultWitnessQuorum)
	}
	for i := 1; i < len(g.Sigs); i++ {
		if bytes.Compare(g.Sigs[i-1].Key, g.Sigs[i].Key) >= 0 {
			return bad("sigs must be sorted by key without duplicates")
		}
	}
	return nil
}

// Check validates a member description against a taxonomy.
func (m *Member) Check(groups, regions []string) error {
	if len(m.Key) != ed25519.PublicKeySize {
		return fmt.Errorf("key is %d bytes, want %d", len(m.Key), ed25519.PublicKeySize)
	}
	if smallOrder(m.Key) {
		return fmt.Errorf("key %x is a point of small order: anyone can sign for it", m.Key[:8])
	}
	if err := checkOrg("org", m.Org); err != nil {
		return err
	}
	if !slices.Contains(groups, m.Group) {
		return fmt.Errorf("group %q is not one of %s", m.Group, strings.Join(groups, ", "))
	}
	if !slices.Contains(regions, m.Region) {
		return fmt.Errorf("region %q is not one of %s", m.Region, strings.Join(regions, ", "))
	}
	return checkText("contact", m.Contact, 0, 300)
}

func checkTaxonomy(field string, names []string) error {
	if len(names) == 0 || len(names) > 32 {
		return fmt.Errorf("%s: must list 1 to 32 names", field)
	}
	seen := map[string]bool{}
	for _, n := range names {
		if !ValidSlug(n) {
			return fmt.Errorf("%s: %q is not a valid name (a-z, 0-9, '-')", field, n)
		}
		if seen[n] {
			return fmt.Errorf("%s: %q listed twice", field, n)
		}
		seen[n] = true
	}
	return nil
}

// Sign adds (or replaces) the signature of key, which must belong to a
// founder.
func (g *Genesis) Sign(key ed25519.PrivateKey) error {
	pub := key.Public().(ed25519.PublicKey)
	if g.founder(pub) < 0 {
		return fmt.Errorf("protocol: genesis: key %x is not a founder", pub[:8])
	}
	msg, err := g.SigningInput()
	if err != nil {
		return err
	}
	sig := FounderSig{Key: pub, Sig: ed25519.Sign(key, msg)}
	g.Sigs = slices.DeleteFunc(g.Sigs, func(s FounderSig) bool { return bytes.Equal(s.Key, pub) })
	g.Sigs = append(g.Sigs, sig)
	slices.SortFunc(g.Sigs, func(a, b FounderSig) int { return bytes.Compare(a.Key, b.Key) })
	return nil
}

func (g *Genesis) founder(key []byte) int {
	return slices.IndexFunc(g.Founders, func(m Member) bool { return bytes.Equal(m.Key, key) })
}

// SignatureStatus reports, for each founder in order, whether a valid
// signature of theirs is present.
func (g *Genesis) SignatureStatus() ([]bool, error) {
	msg, err := g.SigningInput()
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(g.Founders))
	for _, s := range g.Sigs {
		i := g.founder(s.Key)
		if i >= 0 && verifySig(s.Key, msg, s.Sig) {
			out[i] = true
		}
	}
	return out, nil
}

// Verify checks the genesis shape, that every signature is a founder's
// valid signature, and that every founder has signed. A missing signature
// gives an error wrapping ErrGenesisIncomplete that names the founders.
func (g *Genesis) Verify() error {
	if err := g.CheckShape(); err != nil {
		return err
	}
	msg, err := g.SigningInput()
	if err != nil {
		return err
	}
	for _, s := range g.Sigs {
		if g.founder(s.Key) < 0 {
			return Errorf(ReasonBadSignature, "genesis: signature by %x, who is not a founder", s.Key[:min(8, len(s.Key))])
		}
		if !verifySig(s.Key, msg, s.Sig) {
			return Errorf(ReasonBadSignature, "genesis: signature of %s does not verify", g.Founders[g.founder(s.Key)].Org)
		}
	}
	status, _ := g.SignatureStatus()
	var missing []string
	for i, ok := range status {
		if !ok {
			f := g.Founders[i]
			missing = append(missing, fmt.Sprintf("%s (%s, %s, key %x)", f.Org, f.Group, f.Region, f.Key[:8]))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %d of %d: %s", ErrGenesisIncomplete, len(missing), len(g.Founders), strings.Join(missing, "; "))
	}
	return nil
}

// NewGenesis returns an unsigned genesis draft with the default taxonomy and
// rules; callers adjust fields, then every founder calls Sign.
func NewGenesis(name string, founders []Member, created time.Time) *Genesis {
	return &Genesis{
		Version:  Version,
		Name:     name,
		Groups:   slices.Clone(DefaultGroups),
		Regions:  slices.Clone(DefaultRegions),
		Founders: founders,
		Rules:    DefaultRules,
		Created:  created.UnixMilli(),
	}
}

// DevGenesis returns a signed one-member development federation founded by
// key, for the single-command start. Its rules admit with one endorsement.
func DevGenesis(key ed25519.PrivateKey, org string, created time.Time) (*Genesis, error) {
	if org == "" {
		org = "dev node"
	}
	g := NewGenesis("dev federation "+fmt.Sprintf("%x", key.Public().(ed25519.PublicKey)[:4]), []Member{{
		Key:    key.Public().(ed25519.PublicKey),
		Org:    org,
		Group:  DefaultGroups[3],
		Region: DefaultRegions[4],
	}}, created)
	g.Description = devDescription
	g.Rules.AdmitEndorsements, g.Rules.AdmitGroups = 1, 1
	if err := g.Sign(key); err != nil {
		return nil, err
	}
	return g, g.Verify()
}

// devDescription marks a genesis made by DevGenesis.
const devDescription = "One-member development federation created by a node started without a genesis. Not for production."

// IsDevGenesis reports whether g is a one-member development federation
// made by DevGenesis.
func IsDevGenesis(g *Genesis) bool {
	return len(g.Founders) == 1 && g.Description == devDescription
}
