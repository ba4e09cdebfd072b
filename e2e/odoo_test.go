package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/walvault/walvault/restore/odoo"
)

// odooReport is the JSON report of walvault odoo neutralize/anonymize.
type odooReport struct {
	Database string `json:"database"`
	Forced   bool   `json:"forced"`
	Changes  []struct {
		Table   string `json:"table"`
		Column  string `json:"column"`
		Action  string `json:"action"`
		Rows    int64  `json:"rows"`
		Skipped string `json:"skipped"`
	} `json:"changes"`
}

func parseOdooReport(t *testing.T, out string) odooReport {
	t.Helper()
	var r odooReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, out)
	}
	return r
}

func (r odooReport) rows() int64 {
	var n int64
	for _, c := range r.Changes {
		n += c.Rows
	}
	return n
}

// odooDB is a test's connection to one database, failing the test on error.
type odooDB struct {
	t    *testing.T
	conn *pgx.Conn
}

func openOdooDB(t *testing.T, pg *Cluster, db string) *odooDB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pg.ConnectDB(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return &odooDB{t: t, conn: conn}
}

// strings returns the first column of every row, NULL as "<null>".
func (d *odooDB) strings(sql string, args ...any) []string {
	d.t.Helper()
	rows, err := d.conn.Query(context.Background(), sql, args...)
	if err != nil {
		d.t.Fatalf("%s: %v", sql, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s *string
		if err := rows.Scan(&s); err != nil {
			d.t.Fatalf("%s: %v", sql, err)
		}
		if s == nil {
			out = append(out, "<null>")
		} else {
			out = append(out, *s)
		}
	}
	if err := rows.Err(); err != nil {
		d.t.Fatalf("%s: %v", sql, err)
	}
	return out
}

func (d *odooDB) one(sql string, args ...any) string {
	d.t.Helper()
	out := d.strings(sql, args...)
	if len(out) != 1 {
		d.t.Fatalf("%s: %d rows, want 1", sql, len(out))
	}
	return out[0]
}

// expect checks that a query's rows (as text, joined by "|") are want.
func (d *odooDB) expect(what, sql, want string) {
	d.t.Helper()
	if got := strings.Join(d.strings(sql), "|"); got != want {
		d.t.Errorf("%s: got %q, want %q (%s)", what, got, want, sql)
	}
}

func (d *odooDB) mark() {
	d.t.Helper()
	err := odoo.MarkRestoredCopy(context.Background(), d.conn, odoo.RestoredCopy{Database: "prod", Backup: "20261124T040000Z", Target: "latest", RestoredAt: time.Now().UTC()})
	if err != nil {
		d.t.Fatal(err)
	}
}

// TestOdooNeutralize: walvault odoo neutralize refuses an unmarked
// database (exit 5, nothing changed), runs with --force, reads the
// connection from odoo.conf, and leaves every outward-facing setting of
// the Odoo 17 fixture off, column by column; a second run changes nothing.
func TestOdooNeutralize(t *testing.T) {
	h := newHarness(t)
	pg := h.InitCluster("odoo-pg")
	pg.Start()
	loadOdoo17(t, pg, "prod_copy")
	password := "Odoo-Conf-Db-Password-7731"
	registerSecret("odoo.conf db_password", password)
	conf := h.Path("odoo.conf")
	h.WriteFile(conf, []byte(fmt.Sprintf("[options]\nadmin_passwd = False\ndb_host = 127.0.0.1\ndb_port = %d\ndb_user = postgres\ndb_password = %s\ndb_name = False\ndata_dir = /var/lib/odoo\n", pg.Port, password)), 0o644)
	wv := h.Walvault()
	db := openOdooDB(t, pg, "prod_copy")

	_, stderr := wv.RunExpect(5, "odoo", "neutralize", "--odoo-config", conf, "--db", "prod_copy")
	if !strings.Contains(stderr, "not marked as a restored copy") || !strings.Contains(stderr, "--force") {
		t.Errorf("refusal does not say why and what to do: %s", stderr)
	}
	db.expect("crons untouched after the refusal", `SELECT count(*)::text FROM ir_cron WHERE active`, "5")
	if _, stderr, _ := wv.Run("odoo", "neutralize", "--odoo-config", conf); !strings.Contains(stderr, "--db") {
		t.Errorf("no database named: %s", stderr)
	}

	out := wv.MustRun("odoo", "neutralize", "--odoo-config", conf, "--db", "prod_copy", "--force", "--json")
	rep := parseOdooReport(t, out)
	if !rep.Forced || rep.Database != "prod_copy" || rep.rows() == 0 {
		t.Errorf("report: forced %v, database %q, rows %d", rep.Forced, rep.Database, rep.rows())
	}

	db.expect("active crons", `SELECT cron_name FROM ir_cron WHERE active ORDER BY id`, "Base: Auto-vacuum internal data")
	db.expect("original mail servers", `SELECT active::text FROM ir_mail_server WHERE id IN (1, 2) ORDER BY id`, "false|false")
	db.expect("dummy mail server", `SELECT smtp_host || ':' || smtp_port || ':' || active FROM ir_mail_server WHERE id > 2`, "invalid:1025:true")
	db.expect("fetchmail", `SELECT count(*)::text FROM fetchmail_server WHERE active`, "0")
	db.expect("templates' servers", `SELECT count(*)::text FROM mail_template WHERE mail_server_id IS NOT NULL`, "0")
	db.expect("payment providers", `SELECT code || ':' || state FROM payment_provider ORDER BY id`, "stripe:test|paypal:test|custom:test|demo:test|adyen:disabled")
	db.expect("payment credentials", `SELECT count(*)::text FROM payment_provider WHERE coalesce(stripe_secret_key, stripe_publishable_key, stripe_webhook_secret, paypal_email_account, paypal_pdt_token) IS NOT NULL`, "0")
	db.expect("carriers", `SELECT count(*)::text FROM delivery_carrier WHERE prod_environment`, "0")
	db.expect("iap tokens", `SELECT account_token FROM iap_account ORDER BY id`, "7c1e0f3a-5b2d-4e6f-8a9b-0c1d2e3f4a5b+disabled|2f4e6a8c-0b1d-4f3a-9c5e-7d9b1f3a5c7e+disabled")
	db.expect("oauth", `SELECT count(*)::text FROM auth_oauth_provider WHERE enabled`, "0")
	db.expect("calendar tokens", `SELECT count(*)::text FROM res_users_settings WHERE coalesce(google_calendar_rtoken, google_calendar_token, google_calendar_sync_token,
		microsoft_calendar_rtoken, microsoft_calendar_token, microsoft_calendar_sync_token) IS NOT NULL OR google_calendar_token_validity IS NOT NULL`, "0")
	db.expect("webhook action", `SELECT coalesce(webhook_url, '<null>') FROM ir_act_server WHERE state = 'webhook'`, "<null>")
	db.expect("automations", `SELECT count(*)::text FROM base_automation WHERE active`, "0")
	db.expect("neutralized flag", `SELECT value FROM ir_config_parameter WHERE key = 'database.is_neutralized'`, "true")
	db.expect("untouched: users", `SELECT count(*)::text FROM res_users WHERE active`, "4")

	// Marked as a restored copy, it runs without --force; a second run
	// changes nothing.
	db.mark()
	rep = parseOdooReport(t, wv.MustRun("odoo", "neutralize", "--odoo-config", conf, "--db", "prod_copy", "--json"))
	if rep.Forced || rep.rows() != 0 {
		t.Errorf("second run: forced %v, %d rows changed, want 0: %+v", rep.Forced, rep.rows(), rep.Changes)
	}
	db.expect("one dummy server", `SELECT count(*)::text FROM ir_mail_server`, "3")

	// Text output names every table.
	text := wv.MustRun("odoo", "neutralize", "--odoo-config", conf, "--db", "prod_copy")
	for _, table := range []string{"ir_mail_server", "ir_cron", "payment_provider", "iap_account", "base_automation", "ir_config_parameter"} {
		if !strings.Contains(text, table) {
			t.Errorf("text report does not mention %s:\n%s", table, text)
		}
	}
}

// odooOriginals are the personal values of the fixture that must not
// survive anonymisation: every name, email, phone, street, identity
// number and bank account of a person or customer (not the company's own
// partner, which the rules keep). Cities and postcodes are faked in their
// columns but, alone, are never replaced in free text (docs/ANONYMIZE.md:
// they are in too many references), so they are checked column by column
// instead (TestOdooAnonymize).
func odooOriginals(d *odooDB) []string {
	queries := []string{
		`SELECT unnest(ARRAY[name, email, phone, mobile, street, vat, website, phone_sanitized]) FROM res_partner WHERE id NOT IN (SELECT partner_id FROM res_company) AND name <> 'Administrator'`,
		`SELECT login FROM res_users WHERE login NOT IN ('admin', '__system__')`,
		`SELECT totp_secret FROM res_users`,
		`SELECT unnest(ARRAY[name, work_phone, mobile_phone, work_email, private_street, private_phone, private_email,
			spouse_complete_name, ssnid, sinid, identification_id, passport_id, permit_no, visa_no, emergency_contact, emergency_phone,
			private_car_plate, additional_note, birthday::text]) FROM hr_employee`,
		`SELECT name FROM resource_resource`,
		`SELECT unnest(ARRAY[acc_number, sanitized_acc_number, acc_holder_name]) FROM res_partner_bank WHERE partner_id <> 1`,
		`SELECT unnest(ARRAY[contact_name, partner_name, email_from, phone, mobile, street]) FROM crm_lead`,
		`SELECT unnest(ARRAY[partner_name, email_from, partner_phone, partner_mobile, linkedin_profile]) FROM hr_applicant`,
		`SELECT number FROM sms_sms`,
		`SELECT unnest(ARRAY[old_value_char, new_value_char, old_value_text, new_value_text]) FROM mail_tracking_value`,
	}
	// The company's own partner is kept: a person sharing its city keeps
	// that city in the company's address.
	seen := map[string]bool{}
	for _, v := range d.strings(`SELECT unnest(ARRAY[name, email, phone, street, street2, zip, city, vat, website]) FROM res_partner WHERE id IN (SELECT partner_id FROM res_company)`) {
		seen[v] = true
	}
	var out []string
	for _, q := range queries {
		for _, v := range d.strings(q) {
			if v == "<null>" || len(v) < 5 || seen[v] {
				continue
			}
			seen[v] = true
			out = append(out, v)
		}
	}
	// The first names of people, alone, appear in message bodies.
	for _, v := range []string{"Philippa", "Rosalind", "Seraphina", "Allergic to penicillin"} {
		out = append(out, v)
	}
	return out
}

// dumpedOriginals returns odooOriginals(d), failing unless there are
// enough of them and each is in the data dump of the database name: else
// checkNoOriginals after anonymisation could not fail.
func dumpedOriginals(t *testing.T, pg *Cluster, name string, d *odooDB) []string {
	t.Helper()
	originals := odooOriginals(d)
	if len(originals) < 80 {
		t.Fatalf("%s: only %d original values collected", name, len(originals))
	}
	before := pg.dumpData(name)
	for _, v := range originals {
		if !strings.Contains(before, v) {
			t.Fatalf("%s: original %q is not in the dump before anonymisation: the check after could not fail", name, v)
		}
	}
	return originals
}

// checkNoOriginals fails for each original found in dump, whatever its
// case (a fake may not just change the case of a name).
func checkNoOriginals(t *testing.T, what, dump string, originals []string) {
	t.Helper()
	lower := strings.ToLower(dump)
	for _, v := range originals {
		if i := strings.Index(lower, strings.ToLower(v)); i >= 0 {
			start := strings.LastIndexByte(dump[:i], '\n') + 1
			end := i + strings.IndexByte(dump[i:]+"\n", '\n')
			t.Errorf("%soriginal %q survives anonymisation, in the line: %s", what, v, dump[start:end])
		}
	}
}

func (pg *Cluster) dumpData(db string) string {
	return pg.h.runPG(2*time.Minute, nil, "pg_dump", "-h", "127.0.0.1", "-p", strconv.Itoa(pg.Port), "-U", "postgres", "--data-only", db)
}

// TestOdooAnonymize: walvault odoo anonymize on a restored copy of the Odoo
// 17 fixture replaces every personal value: a whole-database dump holds
// none of the originals afterwards (it held all of them before), fakes are
// consistent across tables, unique logins stay unique, the kept admin
// login keeps its password, and a second run works.
func TestOdooAnonymize(t *testing.T) {
	h := newHarness(t)
	pg := h.InitCluster("odoo-pg")
	pg.Start()
	loadOdoo17(t, pg, "staging")
	wv := h.Walvault(pg.LibpqEnv()...)
	db := openOdooDB(t, pg, "staging")

	originals := dumpedOriginals(t, pg, "staging", db)
	adminHash := db.one(`SELECT password FROM res_users WHERE login = 'admin'`)
	companyName := db.one(`SELECT name FROM res_partner WHERE id = 1`)

	wv.RunExpect(5, "odoo", "anonymize", "--db", "staging")
	db.expect("nothing changed after the refusal", `SELECT name FROM res_partner WHERE id = 6`, "Rosalind Fairweather-Skoglund")

	db.mark()
	out := wv.MustRun("odoo", "anonymize", "--db", "staging", "--keep-login", "admin", "--json")
	rep := parseOdooReport(t, out)
	changed := map[string]int64{}
	for _, c := range rep.Changes {
		changed[c.Table+"."+c.Column] += c.Rows
	}
	for col, min := range map[string]int64{"res_partner.name": 9, "res_partner.email": 9, "res_users.login": 3, "hr_employee.private_email": 3,
		"mail_message.body": 6, "res_partner.complete_name": 9, "mail_template.body_html": 1, "mail_tracking_value.old_value_char": 2} {
		if changed[col] < min {
			t.Errorf("report: %s changed %d rows, want at least %d", col, changed[col], min)
		}
	}

	checkNoOriginals(t, "", pg.dumpData("staging"), originals)

	// Consistency: one original, one fake, wherever it was.
	philippa := db.one(`SELECT email FROM res_partner WHERE id = 3`)
	db.expect("user login = partner email", `SELECT login FROM res_users WHERE id = 6`, philippa)
	db.expect("employee work email = partner email", `SELECT work_email FROM hr_employee WHERE id = 1`, philippa)
	db.expect("employee name = resource name = partner name", `SELECT count(DISTINCT n)::text FROM (SELECT name AS n FROM hr_employee WHERE id = 1
		UNION SELECT name FROM resource_resource WHERE id = 1 UNION SELECT name FROM res_partner WHERE id = 3) x`, "1")
	db.expect("complete_name follows the fake names",
		`SELECT (c.complete_name = p.name || ', ' || c.name)::text FROM res_partner c JOIN res_partner p ON p.id = c.parent_id WHERE c.id = 6`, "true")
	rosalind := db.one(`SELECT email FROM res_partner WHERE id = 6`)
	if from := db.one(`SELECT email_from FROM mail_message WHERE id = 1`); !strings.Contains(from, rosalind) {
		t.Errorf("message author's address %q is not the partner's fake %q", from, rosalind)
	}
	db.expect("phones: sanitized = formatted, digits",
		`SELECT (regexp_replace(phone, '[^0-9]', '', 'g') = regexp_replace(phone_sanitized, '[^0-9]', '', 'g'))::text FROM res_partner WHERE id = 7`, "true")
	db.expect("emails look like emails", `SELECT count(*)::text FROM res_partner WHERE email IS NOT NULL AND email !~ '^[a-z]+\.[a-z]+\.[0-9a-f]{10}@example\.com$' AND id <> 1`, "0")
	db.expect("logins unique", `SELECT (count(*) = count(DISTINCT login))::text FROM res_users`, "true")
	if got := db.one(`SELECT login || ' ' || password FROM res_users WHERE id = 2`); got != "admin "+adminHash {
		t.Errorf("kept admin: %q", got)
	}
	db.expect("passwords and totp gone", `SELECT count(*)::text FROM res_users WHERE id NOT IN (1, 2) AND (password IS NOT NULL OR totp_secret IS NOT NULL)`, "0")
	db.expect("company partner kept", `SELECT name FROM res_partner WHERE id = 1`, companyName)
	db.expect("cities and postcodes faked in their columns", `SELECT count(*)::text FROM res_partner p, hr_employee e
		WHERE p.city IN ('Porthkerran', 'Lindenfurt', 'Hebble Bridge') OR p.zip IN ('PZ19 2LX', '80337', 'HX7 5RD')
		OR e.private_city IN ('Kettleby Magna', 'Zuidermeer') OR e.private_zip IN ('KM1 4PQ', 'BW2 7HN', '1018 AB')`, "0")
	db.expect("birthday year kept", `SELECT extract(year FROM birthday)::text FROM hr_employee ORDER BY id`, "1987|1979|1991")
	db.expect("partner photo and CV files dropped", `SELECT count(*)::text FROM ir_attachment WHERE res_model IN ('res.partner', 'hr.applicant') AND (store_fname IS NOT NULL OR db_datas IS NOT NULL)`, "0")
	db.expect("invoice file kept", `SELECT store_fname FROM ir_attachment WHERE res_model = 'account.move'`, "e1/e1d2c3b4a5968778695a4b3c2d1e0f1a2b3c4d5e")
	db.expect("translated jsonb still jsonb with both languages", `SELECT (body_html ? 'en_US' AND body_html ? 'fr_FR')::text FROM mail_template WHERE id = 1`, "true")
	db.expect("IBAN kept its country", `SELECT left(acc_number, 2) FROM res_partner_bank WHERE id = 4`, "DE")
	db.expect("anonymized mark", `SELECT (value ~ '^\d{4}-\d\d-\d\dT')::text FROM ir_config_parameter WHERE key = 'walvault.anonymized'`, "true")

	// A second run works and leaves no original either.
	rep = parseOdooReport(t, wv.MustRun("odoo", "anonymize", "--db", "staging", "--keep-login", "admin", "--json"))
	if rep.rows() == 0 {
		t.Error("second run changed nothing (fresh key, fresh fakes expected)")
	}
	// The second run fakes the first run's fakes: it never keeps the day
	// it is given, but a date it draws (a day of the same year) can be
	// the original one, once in 365; the first run's check covers dates.
	var notDates []string
	for _, v := range originals {
		if _, err := time.Parse("2006-01-02", v); err != nil {
			notDates = append(notDates, v)
		}
	}
	checkNoOriginals(t, "second run: ", pg.dumpData("staging"), notDates)
}

// TestOdooAnonymizeRules: a user's rule file extends the default rules
// (a custom column), a bad one is refused with exit 3, and --print-rules
// shows the merged set.
func TestOdooAnonymizeRules(t *testing.T) {
	h := newHarness(t)
	pg := h.InitCluster("odoo-pg")
	pg.Start()
	loadOdoo17(t, pg, "staging")
	pg.ExecDB("staging", `ALTER TABLE res_partner ADD COLUMN x_studio_nickname varchar; UPDATE res_partner SET x_studio_nickname = 'Roz the Pump Queen' WHERE id = 6`)
	rules := h.Path("rules.yaml")
	h.WriteFile(rules, []byte("version: 1\ntables:\n  - table: res_partner\n    columns:\n      x_studio_nickname: fake:name\n      comment: keep\n"), 0o644)
	bad := h.Path("bad.yaml")
	h.WriteFile(bad, []byte("version: 1\ntables:\n  - table: res_partner\n    columns:\n      name: shred\n"), 0o644)
	wv := h.Walvault(pg.LibpqEnv()...)

	_, stderr := wv.RunExpect(3, "odoo", "anonymize", "--db", "staging", "--rules", bad, "--force")
	if !strings.Contains(stderr, "shred") || !strings.Contains(stderr, bad) {
		t.Errorf("bad rules error does not name the file and action: %s", stderr)
	}
	printed := wv.MustRun("odoo", "anonymize", "--rules", rules, "--print-rules")
	if !strings.Contains(printed, "x_studio_nickname: fake:name") || regexp.MustCompile(`\n\s+comment:`).MatchString(printed) {
		t.Errorf("printed rules do not show the merge:\n%s", printed)
	}
	wv.MustRun("odoo", "anonymize", "--db", "staging", "--rules", rules, "--force")
	db := openOdooDB(t, pg, "staging")
	if v := db.one(`SELECT x_studio_nickname FROM res_partner WHERE id = 6`); v == "Roz the Pump Queen" || v == "<null>" {
		t.Errorf("custom column: %q", v)
	}
	db.expect("comment kept by the user's keep", `SELECT comment FROM res_partner WHERE id = 5`, "<p>Key account since 2019.</p>")
}

// odooShapes turn the Odoo 17 fixture into the shapes of other versions,
// as far as neutralize and anonymize care.
var odooShapes = map[string]string{
	// Odoo 16: display_name stored, employees' home address on a partner,
	// no webhooks, calendar tokens still on res_users in early 16 builds.
	"16": `ALTER TABLE res_partner ADD COLUMN display_name varchar;
		UPDATE res_partner SET display_name = complete_name;
		ALTER TABLE hr_employee DROP COLUMN private_street, DROP COLUMN private_street2, DROP COLUMN private_city, DROP COLUMN private_zip,
			DROP COLUMN private_phone, DROP COLUMN private_email, DROP COLUMN private_car_plate, ADD COLUMN address_home_id integer;
		ALTER TABLE ir_act_server DROP COLUMN webhook_url;
		ALTER TABLE base_automation DROP COLUMN webhook_uuid, DROP COLUMN log_webhook_calls;
		ALTER TABLE res_users ADD COLUMN google_calendar_rtoken varchar, ADD COLUMN google_calendar_token varchar,
			ADD COLUMN google_calendar_token_validity timestamp, ADD COLUMN google_calendar_sync_token varchar;
		UPDATE res_users SET google_calendar_rtoken = s.google_calendar_rtoken, google_calendar_token = s.google_calendar_token
			FROM res_users_settings s WHERE s.user_id = res_users.id;
		DROP TABLE res_users_settings;
		UPDATE ir_module_module SET latest_version = replace(latest_version, '17.0', '16.0');`,
	// Odoo 18: applicants' contact data on hr_candidate, IAP accounts by
	// service_id, no fetchmail_server (merged into mail), no SMS table.
	"18": `CREATE TABLE hr_candidate (id serial PRIMARY KEY, partner_id integer, partner_name varchar, email_from varchar,
			email_normalized varchar, partner_phone varchar, partner_phone_sanitized varchar, linkedin_profile varchar, company_id integer);
		INSERT INTO hr_candidate (partner_id, partner_name, email_from, email_normalized, partner_phone, partner_phone_sanitized, linkedin_profile)
			SELECT partner_id, partner_name, email_from, email_normalized, partner_phone, partner_phone_sanitized, linkedin_profile FROM hr_applicant;
		ALTER TABLE hr_applicant DROP COLUMN partner_name, DROP COLUMN email_from, DROP COLUMN email_normalized, DROP COLUMN partner_phone,
			DROP COLUMN partner_phone_sanitized, DROP COLUMN partner_mobile, DROP COLUMN partner_mobile_sanitized, DROP COLUMN linkedin_profile,
			ADD COLUMN candidate_id integer;
		ALTER TABLE iap_account DROP COLUMN service_name, ADD COLUMN service_id integer;
		DROP TABLE fetchmail_server; DROP TABLE sms_sms;
		UPDATE ir_module_module SET latest_version = replace(latest_version, '17.0', '18.0');`,
	// Odoo 15 and older: payment_acquirer instead of payment_provider.
	"15": `ALTER TABLE payment_provider RENAME TO payment_acquirer;
		ALTER TABLE res_users ADD COLUMN google_calendar_rtoken varchar;
		UPDATE res_users SET google_calendar_rtoken = 'rtoken-' || id;
		DROP TABLE res_users_settings;`,
	// A provider model with is_live (as in Odoo's newest payment module)
	// instead of the enabled/test state.
	"19": `ALTER TABLE payment_provider ADD COLUMN is_live boolean;
		UPDATE payment_provider SET is_live = (state = 'enabled');`,
}

// TestOdooVersionShapes: neutralize and anonymize run without error on the
// Odoo 16 and 18 shapes (and 15's payment_acquirer, a provider with
// is_live), report what they skipped, and still do their job where the
// columns moved. A database that is not Odoo's is refused with exit 3.
func TestOdooVersionShapes(t *testing.T) {
	h := newHarness(t)
	pg := h.InitCluster("odoo-pg")
	pg.Start()
	wv := h.Walvault(pg.LibpqEnv()...)
	_, stderr := wv.RunExpect(3, "odoo", "neutralize", "--db", "postgres", "--force")
	if !strings.Contains(stderr, "not an Odoo database") {
		t.Errorf("non-Odoo database: %s", stderr)
	}
	for _, version := range []string{"16", "18", "15", "19"} {
		name := "odoo" + version
		loadOdoo17(t, pg, name)
		pg.ExecDB(name, odooShapes[version])
		db := openOdooDB(t, pg, name)
		db.mark()

		rep := parseOdooReport(t, wv.MustRun("odoo", "neutralize", "--db", name, "--json"))
		skipped := map[string]string{}
		for _, c := range rep.Changes {
			if c.Skipped != "" {
				skipped[c.Table] = c.Skipped
			}
		}
		db.expect(version+": crons", `SELECT count(*)::text FROM ir_cron WHERE active`, "1")
		db.expect(version+": mail servers", `SELECT count(*)::text FROM ir_mail_server WHERE active AND smtp_host <> 'invalid'`, "0")
		switch version {
		case "16":
			db.expect("16: calendar tokens on res_users", `SELECT count(*)::text FROM res_users WHERE google_calendar_rtoken IS NOT NULL`, "0")
			if skipped["ir_act_server"] == "" {
				t.Errorf("16: webhook step not reported as skipped: %+v", rep.Changes)
			}
		case "18":
			if skipped["fetchmail_server"] != "table absent" {
				t.Errorf("18: fetchmail_server not reported absent: %+v", skipped)
			}
		case "15":
			db.expect("15: acquirers", `SELECT count(*)::text FROM payment_acquirer WHERE state = 'enabled' OR stripe_secret_key IS NOT NULL`, "0")
			db.expect("15: calendar tokens on res_users", `SELECT count(*)::text FROM res_users WHERE google_calendar_rtoken IS NOT NULL`, "0")
		case "19":
			db.expect("19: live providers", `SELECT count(*)::text FROM payment_provider WHERE is_live`, "0")
		}

		// The 15 and 19 shapes keep every table and column odooOriginals
		// reads (16 and 18 drop some): their whole dump is checked.
		var originals []string
		if version == "15" || version == "19" {
			originals = dumpedOriginals(t, pg, name, db)
		}
		wv.MustRun("odoo", "anonymize", "--db", name)
		after := pg.dumpData(name)
		if originals != nil {
			checkNoOriginals(t, version+": ", after, originals)
		} else if strings.Contains(strings.ToLower(after), "fairweather") {
			t.Errorf("%s: a name survives anonymisation", version)
		}
		switch version {
		case "16":
			db.expect("16: display_name scrubbed", `SELECT (display_name = complete_name)::text FROM res_partner WHERE id = 6`, "true")
			if dn := db.one(`SELECT display_name FROM res_partner WHERE id = 6`); strings.Contains(dn, "Rosalind") {
				t.Errorf("16: display_name %q", dn)
			}
		case "18":
			if v := db.one(`SELECT email_from FROM hr_candidate`); strings.Contains(v, "okonkwo") {
				t.Errorf("18: candidate email %q", v)
			}
		}
	}
}
