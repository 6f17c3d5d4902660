package protocol

import (
	"fmt"

	"github.com/mtibben/confusables"
	"golang.org/x/text/cases"
	"golang.org/x/text/secure/precis"
)

// OrgKey returns the form under which two organisation names are the same
// organisation: the name under the PRECIS Nickname profile (RFC 8266:
// NFKC, spaces mapped, trimmed and collapsed; control, invisible and
// bidirectional control characters refused), case folded, then the
// Unicode confusable skeleton (UTS #39), so that "Org 2", "ORG 2", "Оrg 2" (Cyrillic О) and
// "Org  2" compare equal. It fails for a name that the profile refuses.
// One organisation is one member: the membership fold refuses an
// application, and the genesis a founder, whose OrgKey is a current
// member's (docs/protocol.md, "Membership").
func OrgKey(name string) (string, error) {
	n, err := precis.Nickname.String(name)
	if err != nil {
		return "", fmt.Errorf("org %q: %w", name, err)
	}
	return confusables.Skeleton(cases.Fold().String(n)), nil
}

// checkOrg checks an organisation name: a one-line text of 1..200 bytes
// that OrgKey accepts.
func checkOrg(field, name string) error {
	if err := checkText(field, name, 1, 200); err != nil {
		return err
	}
	if _, err := OrgKey(name); err != nil {
		return fmt.Errorf("%s: %q is not a usable organisation name (control, invisible or direction-changing characters?): %w", field, name, err)
	}
	return nil
}
