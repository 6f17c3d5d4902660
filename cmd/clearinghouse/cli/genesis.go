package cli

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/clearinghouse-net/clearinghouse/config"
	"github.com/clearinghouse-net/clearinghouse/protocol"
)

// genesisMode is the mode of the genesis files the commands write: the
// genesis is public.
const genesisMode fs.FileMode = 0o644

func newGenesisCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "genesis",
		Short: "Draft, sign and verify a federation's genesis",
		Long: `Draft, sign and verify the genesis of a federation: its founding record,
which names the founders, the stakeholder groups and regions, and the
governance rules. A genesis is valid only when every founder has signed it;
its CID is the federation's network id.

Founders need not be in one room. One of them drafts the genesis and sends the
file round; each signs it with their node's identity key (in turn, or each a
copy: signatures are kept sorted, so the order does not matter, but the
signatures must be gathered into one file); anyone can verify it. Then each
node installs it with: clearinghouse init --genesis FILE.`,
		Example: `  clearinghouse genesis draft --name "Example federation" --founders-file founders.toml --out genesis.cbor
  clearinghouse genesis sign genesis.cbor
  clearinghouse genesis verify genesis.cbor
  clearinghouse init --genesis genesis.cbor`,
		Args: rootArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newGenesisDraftCommand(a), newGenesisSignCommand(a), newGenesisVerifyCommand(a))
	return cmd
}

// draftFlags are the flags of genesis draft.
type draftFlags struct {
	name, description string
	founders          []string
	foundersFile      string
	groups, regions   []string
	rules             protocol.Rules
	minNotice         time.Duration
	out               string
	force             bool
}

func newGenesisDraftCommand(a *app) *cobra.Command {
	f := draftFlags{rules: protocol.DefaultRules}
	cmd := &cobra.Command{
		Use:   "draft",
		Short: "Write an unsigned genesis draft",
		Long: `Write an unsigned genesis draft to --out, in canonical DAG-CBOR, and print its
summary. The draft is checked as a genesis is (name, groups, regions,
founders, rules) before it is written.

Founders are given with --founder, repeatable, as

  KEY,ORG,GROUP,REGION[,CONTACT]

or in a TOML file given with --founders-file (whose founders come first):

  [[founder]]
  key = "12D3KooW..."
  org = "Example Org"
  group = "civil-society"
  region = "africa"
  contact = "ops@example.org"   # optional

KEY is the founder node's peer id (clearinghouse id prints it) or its ed25519
public key as 64 hex digits. GROUP and REGION must be among --groups and
--regions. Use the file for an organisation name that contains a comma.

The rules default to those of the protocol (--admit-endorsements 2,
--admit-groups 2, --admit-regions 0, --decision-min-endorsements 1,
--min-notice 336h). They are fixed by the genesis: changing one later means a
new federation.`,
		Example: `  clearinghouse genesis draft --name "Example federation" \
    --founder '12D3KooWAbc...,Org A,civil-society,africa' \
    --founder '12D3KooWDef...,Org B,private-sector,asia-pacific,ops@b.example' \
    --admit-endorsements 3 --admit-groups 2 --out genesis.cbor
  clearinghouse genesis draft --name "Example federation" --founders-file founders.toml --out genesis.cbor`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.rules.MinNoticeSeconds = int64(f.minNotice / time.Second)
			if f.minNotice < 0 {
				return &usageError{fmt.Errorf("--min-notice %s: must not be negative", f.minNotice)}
			}
			return a.genesisDraft(f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "the federation's name (required)")
	fl.StringVar(&f.description, "description", "", "a description of the federation")
	fl.StringArrayVar(&f.founders, "founder", nil, "a founder as KEY,ORG,GROUP,REGION[,CONTACT]; repeat for each")
	fl.StringVar(&f.foundersFile, "founders-file", "", "a TOML file of [[founder]] tables (key, org, group, region, contact)")
	fl.StringSliceVar(&f.groups, "groups", protocol.DefaultGroups, "the stakeholder groups, comma-separated")
	fl.StringSliceVar(&f.regions, "regions", protocol.DefaultRegions, "the regions, comma-separated")
	fl.IntVar(&f.rules.AdmitEndorsements, "admit-endorsements", f.rules.AdmitEndorsements, "member endorsements that admit an applicant")
	fl.IntVar(&f.rules.AdmitGroups, "admit-groups", f.rules.AdmitGroups, "distinct stakeholder groups those endorsers must span")
	fl.IntVar(&f.rules.AdmitRegions, "admit-regions", f.rules.AdmitRegions, "distinct regions those endorsers must span (0: no condition)")
	fl.IntVar(&f.rules.DecisionMinEndorsements, "decision-min-endorsements", f.rules.DecisionMinEndorsements,
		"default decision threshold: endorsements needed within every group and every region that has members")
	fl.DurationVar(&f.minNotice, "min-notice", time.Duration(f.rules.MinNoticeSeconds)*time.Second,
		"least notice before a consultation or decision")
	fl.StringVar(&f.out, "out", "", "the draft file to write (required)")
	fl.BoolVar(&f.force, "force", false, "replace --out if it exists")
	return cmd
}

// genesisDraft is the genesis draft command.
func (a *app) genesisDraft(f draftFlags) error {
	switch {
	case f.name == "":
		return &usageError{errors.New("--name is required")}
	case f.out == "":
		return &usageError{errors.New("--out is required")}
	case len(f.founders) == 0 && f.foundersFile == "":
		return &usageError{errors.New("no founders: give --founder or --founders-file")}
	}
	var founders []protocol.Member
	if f.foundersFile != "" {
		fromFile, err := readFoundersFile(f.foundersFile, f.groups, f.regions)
		if err != nil {
			return err
		}
		founders = fromFile
	}
	for _, spec := range f.founders {
		m, err := parseFounder(spec)
		if err == nil {
			err = m.Check(f.groups, f.regions)
		}
		if err != nil {
			return fmt.Errorf("--founder %q: %w", spec, err)
		}
		founders = append(founders, m)
	}
	g := protocol.NewGenesis(f.name, founders, time.Now())
	g.Description = f.description
	g.Groups, g.Regions = f.groups, f.regions
	g.Rules = f.rules
	if err := g.CheckShape(); err != nil {
		return fmt.Errorf("genesis draft: %w", err)
	}
	data, err := g.Encode()
	if err != nil {
		return fmt.Errorf("genesis draft: %w", err)
	}
	if !f.force {
		if _, err := os.Lstat(f.out); err == nil {
			return fmt.Errorf("genesis draft: %s exists; not replacing it (use --force)", f.out)
		}
	}
	if err := writeFileAtomic(f.out, data, genesisMode); err != nil {
		return err
	}
	if a.jsonOutput() {
		return printGenesisJSON(a.stdout, g, f.out)
	}
	fmt.Fprintf(a.stdout, "wrote draft: %s\n", f.out)
	if err := printGenesis(a.stdout, g); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "next: each founder runs: %s --data-dir THEIR_DATA_DIR genesis sign %s\n", progName(), f.out)
	return nil
}

// foundersFile is the TOML file of --founders-file.
type foundersFile struct {
	Founder []struct {
		Key     string `toml:"key"`
		Org     string `toml:"org"`
		Group   string `toml:"group"`
		Region  string `toml:"region"`
		Contact string `toml:"contact"`
	} `toml:"founder"`
}

// readFoundersFile reads and checks the founders of a --founders-file.
func readFoundersFile(path string, groups, regions []string) ([]protocol.Member, error) {
	var ff foundersFile
	md, err := toml.DecodeFile(path, &ff)
	if err != nil {
		return nil, fmt.Errorf("founders file %s: %w", path, err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		return nil, fmt.Errorf("founders file %s: unknown key %q", path, u[0].String())
	}
	if len(ff.Founder) == 0 {
		return nil, fmt.Errorf("founders file %s: no [[founder]] tables", path)
	}
	out := make([]protocol.Member, 0, len(ff.Founder))
	for i, e := range ff.Founder {
		key, err := parseFounderKey(e.Key)
		m := protocol.Member{Key: key, Org: e.Org, Group: e.Group, Region: e.Region, Contact: e.Contact}
		if err == nil {
			err = m.Check(groups, regions)
		}
		if err != nil {
			return nil, fmt.Errorf("founders file %s: founder %d: %w", path, i+1, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// parseFounder parses KEY,ORG,GROUP,REGION[,CONTACT]. The contact, being
// last, may contain commas.
func parseFounder(spec string) (protocol.Member, error) {
	parts := strings.SplitN(spec, ",", 5)
	if len(parts) < 4 {
		return protocol.Member{}, errors.New("want KEY,ORG,GROUP,REGION[,CONTACT]")
	}
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	key, err := parseFounderKey(parts[0])
	if err != nil {
		return protocol.Member{}, err
	}
	m := protocol.Member{Key: key, Org: parts[1], Group: parts[2], Region: parts[3]}
	if len(parts) == 5 {
		m.Contact = parts[4]
	}
	return m, nil
}

// parseFounderKey returns the raw ed25519 public key named by s: 64 hex
// digits, or a libp2p peer id that embeds an ed25519 key.
func parseFounderKey(s string) ([]byte, error) {
	if len(s) == 2*ed25519.PublicKeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	id, err := peer.Decode(s)
	if err != nil {
		return nil, fmt.Errorf("key %q is neither a peer id nor 64 hex digits of an ed25519 public key", s)
	}
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("peer id %s: no public key in it: %w", s, err)
	}
	if pk.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("peer id %s: %s key, want ed25519", s, pk.Type())
	}
	return pk.Raw()
}

func newGenesisSignCommand(a *app) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "sign DRAFT",
		Short: "Sign a genesis draft with this node's identity key",
		Long: `Sign the genesis draft DRAFT with the identity key of the data directory, which
must be a founder's, and write it back: in place (atomically) by default, or
to --out. It then prints who has signed and who has not.

Signing again with the same key changes nothing. Each founder signs what the
draft says, so read the summary (clearinghouse genesis verify DRAFT) before
signing: a changed draft needs every signature again.`,
		Example: `  clearinghouse genesis sign genesis.cbor
  clearinghouse --data-dir /srv/clearinghouse genesis sign draft.cbor --out signed.cbor`,
		Args: exactArgs(1, "DRAFT"),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.genesisSign(args[0], out)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write the signed genesis here instead of replacing DRAFT")
	return cmd
}

// genesisSign is the genesis sign command.
func (a *app) genesisSign(path, out string) error {
	g, err := readGenesis(path)
	if err != nil {
		return err
	}
	dd, err := a.resolveDataDir()
	if err != nil {
		return err
	}
	if err := a.requireDataDir(dd); err != nil {
		return err
	}
	key, err := config.LoadIdentity(dd.KeyPath())
	if err != nil {
		return err
	}
	raw, err := key.Raw()
	if err != nil {
		return fmt.Errorf("identity key %s: %w", dd.KeyPath(), err)
	}
	priv := ed25519.PrivateKey(raw)
	pub := priv.Public().(ed25519.PublicKey)
	if !isFounder(g, pub) {
		id, _ := peer.IDFromPrivateKey(key)
		return fmt.Errorf("genesis sign: this node (peer id %s, key %x) is not a founder of %s; the founders are: %s",
			id, []byte(pub[:8]), path, founderList(g))
	}
	if err := g.Sign(priv); err != nil {
		return fmt.Errorf("genesis sign: %w", err)
	}
	data, err := g.Encode()
	if err != nil {
		return fmt.Errorf("genesis sign: %w", err)
	}
	if out == "" {
		out = path
	}
	if err := writeFileAtomic(out, data, genesisMode); err != nil {
		return err
	}
	id, _ := peer.IDFromPrivateKey(key)
	if a.jsonOutput() {
		return printGenesisJSON(a.stdout, g, out)
	}
	fmt.Fprintf(a.stdout, "signed: %s as %s\n", out, id)
	if err := printGenesis(a.stdout, g); err != nil {
		return err
	}
	if g.Verify() == nil {
		fmt.Fprintf(a.stdout, "next: every node installs it with: %s --data-dir ITS_DATA_DIR init --genesis %s\n", progName(), out)
	} else {
		fmt.Fprintf(a.stdout, "next: send %s to the founders who have not signed\n", out)
	}
	return nil
}

// isFounder reports whether pub is the key of one of g's founders.
func isFounder(g *protocol.Genesis, pub []byte) bool {
	for _, f := range g.Founders {
		if bytes.Equal(f.Key, pub) {
			return true
		}
	}
	return false
}

// founderList returns "ORG (peer id), ..." for g's founders.
func founderList(g *protocol.Genesis) string {
	var parts []string
	for _, f := range g.Founders {
		parts = append(parts, fmt.Sprintf("%s (%s)", f.Org, keyPeerID(f.Key)))
	}
	return strings.Join(parts, ", ")
}

func newGenesisVerifyCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check a genesis and show who has signed it",
		Long: `Check the genesis FILE and print its name, rules and founders, each with
whether their signature is present and valid. A complete genesis, signed by
every founder, also shows its network id.

Exit status: 0 if the genesis is complete and every signature verifies; 1
otherwise, with an error naming the founders who have not signed.`,
		Example: `  clearinghouse genesis verify genesis.cbor
  clearinghouse genesis verify genesis.cbor --json | jq -r .networkId`,
		Args: exactArgs(1, "FILE"),
		RunE: func(_ *cobra.Command, args []string) error {
			return a.genesisVerify(args[0], a.jsonOutput())
		},
	}
	return cmd
}

// genesisVerify is the genesis verify command.
func (a *app) genesisVerify(path string, asJSON bool) error {
	g, err := readGenesis(path)
	if err != nil {
		return err
	}
	if asJSON {
		v, err := genesisView(g)
		if err != nil {
			return err
		}
		if err := printValue(a.stdout, v); err != nil {
			return err
		}
	} else if err := printGenesis(a.stdout, g); err != nil {
		return err
	}
	if err := g.Verify(); err != nil {
		return fmt.Errorf("genesis %s: %w", path, err)
	}
	return nil
}

// readGenesis reads and decodes the genesis file path, checking its shape
// but not its signatures. Errors name the file.
func readGenesis(path string) (*protocol.Genesis, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("genesis: %w", err)
	}
	g, err := protocol.DecodeGenesis(data)
	if err != nil {
		return nil, fmt.Errorf("genesis: %s is not a valid genesis file: %w", path, err)
	}
	return g, nil
}

// keyPeerID returns the peer id of a raw ed25519 public key, or its hex
// form if it is not one.
func keyPeerID(key []byte) string {
	pk, err := crypto.UnmarshalEd25519PublicKey(key)
	if err != nil {
		return hex.EncodeToString(key)
	}
	id, err := peer.IDFromPublicKey(pk)
	if err != nil {
		return hex.EncodeToString(key)
	}
	return id.String()
}

// genesisJSON is the --json form of a genesis and its signature status.
type genesisJSON struct {
	Name        string        `json:"name"`
	Description string        `json:"description"`
	Created     string        `json:"created"` // RFC 3339
	Complete    bool          `json:"complete"`
	NetworkID   string        `json:"networkId,omitempty"`
	Groups      []string      `json:"groups"`
	Regions     []string      `json:"regions"`
	Rules       rulesJSON     `json:"rules"`
	Founders    []founderJSON `json:"founders"`
	// Problem is Verify's error, if any.
	Problem string `json:"problem,omitempty"`
}

type rulesJSON struct {
	AdmitEndorsements       int    `json:"admitEndorsements"`
	AdmitGroups             int    `json:"admitGroups"`
	AdmitRegions            int    `json:"admitRegions"`
	DecisionMinEndorsements int    `json:"decisionMinEndorsements"`
	MinNoticeSeconds        int64  `json:"minNoticeSeconds"`
	MinNotice               string `json:"minNotice"`
}

type founderJSON struct {
	Org     string `json:"org"`
	Group   string `json:"group"`
	Region  string `json:"region"`
	Contact string `json:"contact,omitempty"`
	Key     string `json:"key"`
	PeerID  string `json:"peerId"`
	Signed  bool   `json:"signed"`
}

// genesisView returns the JSON view of g.
func genesisView(g *protocol.Genesis) (genesisJSON, error) {
	status, err := g.SignatureStatus()
	if err != nil {
		return genesisJSON{}, err
	}
	r := g.Rules
	v := genesisJSON{
		Name: g.Name, Description: g.Description,
		Created: jsonTime(time.UnixMilli(g.Created)),
		Groups:  g.Groups, Regions: g.Regions,
		Rules: rulesJSON{r.AdmitEndorsements, r.AdmitGroups, r.AdmitRegions, r.DecisionMinEndorsements,
			r.MinNoticeSeconds, humanDuration(time.Duration(r.MinNoticeSeconds) * time.Second)},
	}
	for i, f := range g.Founders {
		v.Founders = append(v.Founders, founderJSON{f.Org, f.Group, f.Region, f.Contact,
			hex.EncodeToString(f.Key), keyPeerID(f.Key), status[i]})
	}
	if err := g.Verify(); err != nil {
		v.Problem = err.Error()
	} else {
		v.Complete = true
		id, err := g.NetworkID()
		if err != nil {
			return genesisJSON{}, err
		}
		v.NetworkID = id.String()
	}
	return v, nil
}

// printGenesisJSON prints the --json answer of genesis draft and sign:
// the file written and the genesis as genesis verify --json shows it.
func printGenesisJSON(w io.Writer, g *protocol.Genesis, file string) error {
	v, err := genesisView(g)
	if err != nil {
		return err
	}
	return printValue(w, struct {
		File    string      `json:"file"`
		Genesis genesisJSON `json:"genesis"`
	}{file, v})
}

// printGenesis prints the summary of g: one "name: value" line per field,
// then one line per founder.
func printGenesis(w io.Writer, g *protocol.Genesis) error {
	v, err := genesisView(g)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "name: %s\n", v.Name)
	if v.Description != "" {
		fmt.Fprintf(w, "description: %s\n", v.Description)
	}
	fmt.Fprintf(w, "created: %s\n", parseAPITime(v.Created).Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "groups: %s\n", strings.Join(v.Groups, ", "))
	fmt.Fprintf(w, "regions: %s\n", strings.Join(v.Regions, ", "))
	r := v.Rules
	fmt.Fprintf(w, "admission: %s spanning at least %s and %s\n",
		plural(r.AdmitEndorsements, "member endorsement"), plural(r.AdmitGroups, "group"), plural(r.AdmitRegions, "region"))
	fmt.Fprintf(w, "decisions: at least %s in every group and every region with members\n",
		plural(r.DecisionMinEndorsements, "endorsement"))
	fmt.Fprintf(w, "minimum notice: %s\n", r.MinNotice)
	signed := 0
	for _, f := range v.Founders {
		if f.Signed {
			signed++
		}
	}
	fmt.Fprintf(w, "founders: %d, signed: %d, missing: %d\n", len(v.Founders), signed, len(v.Founders)-signed)
	for _, f := range v.Founders {
		mark := "no "
		if f.Signed {
			mark = "yes"
		}
		fmt.Fprintf(w, "  signed %s  %s (%s, %s) peer %s key %s", mark, f.Org, f.Group, f.Region, f.PeerID, f.Key[:16])
		if f.Contact != "" {
			fmt.Fprintf(w, " contact %s", f.Contact)
		}
		fmt.Fprintln(w)
	}
	if v.Complete {
		fmt.Fprintf(w, "network id: %s\n", v.NetworkID)
	} else {
		fmt.Fprintf(w, "network id: none yet (not signed by every founder)\n")
	}
	return nil
}

// exactArgs requires n positional arguments, named in the error.
func exactArgs(n int, names string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return &usageError{fmt.Errorf("%s takes %s, got %d arguments", cmd.CommandPath(), names, len(args))}
		}
		return nil
	}
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, synced and renamed over path, so that a reader sees the old
// file or the new one, never a part.
func writeFileAtomic(path string, data []byte, mode fs.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("chmod %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: the rename is done
		_ = d.Close()
	}
	return nil
}
