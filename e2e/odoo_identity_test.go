package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// pyStr is a Python 3 str's repr for the simple strings of the fixture.
func pyStr(t *testing.T, s string) string {
	t.Helper()
	if strings.ContainsAny(s, "'\"\\\n\r\t") {
		t.Fatalf("pyStr: %q needs Python's escaping rules", s)
	}
	return "'" + s + "'"
}

// odooSessionToken is the session token Odoo 16 and 17
// (res.users._compute_session_token) derives for a session id sid of user
// uid in the database of d, and checks on every request: an HMAC-SHA256
// of sid, keyed with Python's text of the tuple (active, id, login,
// password, database.secret). A session whose stored token differs is
// refused.
func odooSessionToken(t *testing.T, d *odooDB, uid int, sid string) string {
	t.Helper()
	var active bool
	var id int
	var login, password, secret string
	err := d.conn.QueryRow(context.Background(), `SELECT active, id, login, password,
		(SELECT value FROM ir_config_parameter WHERE key = 'database.secret') FROM res_users WHERE id = $1`, uid).Scan(&active, &id, &login, &password, &secret)
	if err != nil {
		t.Fatal(err)
	}
	py := map[bool]string{true: "True", false: "False"}
	key := fmt.Sprintf("(%s, %d, %s, %s, %s)", py[active], id, pyStr(t, login), pyStr(t, password), pyStr(t, secret))
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(sid))
	return hex.EncodeToString(m.Sum(nil))
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestOdooNeutralizeIdentity: a copy made as Odoo's database manager makes
// one (CREATE DATABASE … TEMPLATE) shares production's database.uuid and
// database.secret, so it accepts production's session tokens; walvault odoo
// neutralize gives it its own (uuid4 values, the odoo.com OAuth client id
// following the uuid), after which production's session token is refused,
// sets web.base.url to --base-url and freezes it, and leaves production
// alone. A second run changes nothing; marking a copy (as restore does)
// gives it a new identity too, which neutralize then keeps.
func TestOdooNeutralizeIdentity(t *testing.T) {
	h := newHarness(t)
	pg := h.InitCluster("odoo-pg")
	pg.Start()
	loadOdoo17(t, pg, "prod")
	pg.ExecDB("prod", `UPDATE auth_oauth_provider SET client_id = (SELECT value FROM ir_config_parameter WHERE key = 'database.uuid') WHERE id = 2`)
	pg.Exec(`CREATE DATABASE staging TEMPLATE prod`)
	wv := h.Walvault(pg.LibpqEnv()...)
	prod, cp := openOdooDB(t, pg, "prod"), openOdooDB(t, pg, "staging")
	param := func(d *odooDB, key string) string {
		return d.one(`SELECT coalesce((SELECT value FROM ir_config_parameter WHERE key = $1), '<none>')`, key)
	}
	prodUUID, prodSecret, prodURL := param(prod, "database.uuid"), param(prod, "database.secret"), param(prod, "web.base.url")

	const sid = "Zq3v9fPbE4lQ0s7yWmK2xR8uN1tH6cJ5aD0gL3oV9iB7eF4kS2nM8pT1wY6zX5" // a session id, as Odoo draws them
	prodToken := odooSessionToken(t, prod, 2, sid)
	if got := odooSessionToken(t, cp, 2, sid); got != prodToken {
		t.Fatalf("before neutralize, the copy computes %s for production's session, not %s: the check below could not fail", got, prodToken)
	}

	_, stderr := wv.RunExpect(2, "odoo", "neutralize", "--db", "staging", "--force", "--base-url", "ftp://staging.example.test")
	if !strings.Contains(stderr, "--base-url") {
		t.Errorf("bad --base-url: %s", stderr)
	}
	rep := parseOdooReport(t, wv.MustRun("odoo", "neutralize", "--db", "staging", "--force", "--base-url", "https://staging.example.test/", "--json"))
	found := false
	for _, c := range rep.Changes {
		if c.Column == "database.uuid,database.secret" && c.Rows == 2 {
			found = true
		}
	}
	if !found {
		t.Errorf("the report does not count the new uuid and secret: %+v", rep.Changes)
	}

	uuid, secret := param(cp, "database.uuid"), param(cp, "database.secret")
	if uuid == prodUUID || secret == prodSecret || !uuidRE.MatchString(uuid) || !uuidRE.MatchString(secret) || uuid == secret {
		t.Errorf("copy's identity: uuid %s, secret %s (production's: %s, %s)", uuid, secret, prodUUID, prodSecret)
	}
	if got := odooSessionToken(t, cp, 2, sid); got == prodToken {
		t.Error("the copy still accepts production's session token")
	}
	cp.expect("walvault.copy_uuid", `SELECT value FROM ir_config_parameter WHERE key = 'walvault.copy_uuid'`, uuid)
	cp.expect("odoo.com OAuth client id follows the uuid", `SELECT client_id FROM auth_oauth_provider WHERE id = 2`, uuid)
	cp.expect("base url", `SELECT value FROM ir_config_parameter WHERE key = 'web.base.url'`, "https://staging.example.test")
	cp.expect("base url frozen", `SELECT value FROM ir_config_parameter WHERE key = 'web.base.url.freeze'`, "True")

	prod.expect("production's identity", `SELECT string_agg(value, ' ' ORDER BY key) FROM ir_config_parameter WHERE key IN ('database.secret', 'database.uuid', 'web.base.url')`,
		prodSecret+" "+prodUUID+" "+prodURL)
	if got := odooSessionToken(t, prod, 2, sid); got != prodToken {
		t.Error("production's session token changed")
	}

	// Again: nothing changes, the copy's users stay logged in.
	rep = parseOdooReport(t, wv.MustRun("odoo", "neutralize", "--db", "staging", "--force", "--base-url", "https://staging.example.test", "--json"))
	if rep.rows() != 0 || param(cp, "database.secret") != secret {
		t.Errorf("second run changed %d rows (secret %s, was %s)", rep.rows(), param(cp, "database.secret"), secret)
	}

	// Marking a copy gives it a new identity; neutralize keeps that one.
	cp.mark()
	marked := param(cp, "database.uuid")
	if marked == uuid || param(cp, "database.secret") == secret || param(cp, "walvault.copy_uuid") != marked {
		t.Errorf("mark: uuid %s (was %s), copy_uuid %s", marked, uuid, param(cp, "walvault.copy_uuid"))
	}
	if rep := parseOdooReport(t, wv.MustRun("odoo", "neutralize", "--db", "staging", "--json")); rep.rows() != 0 || param(cp, "database.uuid") != marked {
		t.Errorf("neutralize after mark: %d rows, uuid %s (marked %s)", rep.rows(), param(cp, "database.uuid"), marked)
	}
}
