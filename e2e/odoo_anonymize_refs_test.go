package e2e

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// danishOdooSQL adds to the Odoo 17 fixture Danish customers whose
// four-digit postcodes and house numbers are also parts of the company's
// document references (postcode 4000, invoice INV/2025/04000), and the
// chatter, attachments, leads, templates and tags that quote both: the
// case where scrubbing every occurrence of a faked value rewrote invoice
// numbers. Two names are short on purpose: a two-letter full name and a
// one-word company. References are only in columns a scrub rewrites (not
// in message bodies, which the default rules replace whole).
const danishOdooSQL = `
INSERT INTO res_partner (id, create_date, name, complete_name, parent_id, commercial_partner_id, lang, type, street, street2, zip, city, email, phone, mobile, commercial_company_name, comment, active, is_company, partner_share, email_normalized, phone_sanitized) VALUES
 (20, '2025-01-06 09:00:00', 'Mette Kjærgaard Sørensen', 'Mette Kjærgaard Sørensen', NULL, 20, 'da_DK', 'contact', 'Algade 40', NULL, '4000', 'Roskilde',
  'mette.kjaergaard@roskilde-post.example', '+45 46 35 40 00', '+45 20 40 00 12', NULL, '<p>Kunde siden 2012, Algade 40.</p>', true, false, true, 'mette.kjaergaard@roskilde-post.example', '+4546354000'),
 (21, '2025-01-06 09:00:00', 'Bo Li', 'Bo Li', NULL, 21, 'da_DK', 'contact', 'Skovvej 12', '2. th', '2100', 'København Ø',
  'bo.li@oesterbro-post.example', '+45 31 21 00 12', NULL, NULL, NULL, true, false, true, 'bo.li@oesterbro-post.example', '+4531210012'),
 (22, '2025-01-06 09:00:00', 'Brugsen', 'Brugsen', NULL, 22, 'da_DK', 'contact', 'Nørregade 2', NULL, '4100', 'Ringsted',
  'info@brugsen-ringsted.example', '+45 57 61 41 00', NULL, 'Brugsen', NULL, true, true, true, 'info@brugsen-ringsted.example', '+4557614100'),
 (23, '2025-01-06 09:00:00', 'Anne Mortensen', 'Brugsen, Anne Mortensen', 22, 22, 'da_DK', 'contact', 'Nørregade 2', NULL, '4100', 'Ringsted',
  'anne.mortensen@brugsen-ringsted.example', '+45 57 61 41 02', '+45 40 41 00 02', 'Brugsen', NULL, true, false, true, 'anne.mortensen@brugsen-ringsted.example', '+4557614102'),
 (24, '2025-01-06 09:00:00', 'Jens Peter Hansen', 'Jens Peter Hansen', NULL, 24, 'da_DK', 'contact', 'Hovedgaden 8', '1. tv', '8000', 'Aarhus C',
  'jph@aarhus-post.example', '86 12 80 00', NULL, NULL, NULL, true, false, true, 'jph@aarhus-post.example', '+4586128000');

INSERT INTO mail_message (id, subject, date, body, model, res_id, record_name, message_type, author_id, email_from, reply_to, message_id) VALUES
 (20, 'Faktura INV/2025/04000 til Mette Kjærgaard Sørensen', '2025-08-01 10:00:00', '<p>Kære Mette Kjærgaard Sørensen, ring 46 35 40 00.</p>',
  'account.move', 4000, 'INV/2025/04000', 'email', 20, '"Mette Kjærgaard Sørensen" <mette.kjaergaard@roskilde-post.example>', NULL, '<4000.1754042400@roskilde-post.example>'),
 (21, 'Re: Tilbud S02100 - ring 46 35 40 00', '2025-08-02 10:00:00', '<p>Tak.</p>',
  'sale.order', 2100, 'S02100', 'email', 20, 'Mette Kjærgaard Sørensen <mette.kjaergaard@roskilde-post.example>', NULL, NULL),
 (22, 'Adresseændring Skovvej 12, 2. th, 2100 København Ø', '2025-08-03 10:00:00', '<p>Bo Li er flyttet.</p>',
  'res.partner', 21, 'Bo Li', 'notification', 21, '"Bo Li" <bo.li@oesterbro-post.example>', NULL, NULL),
 (23, 'Ordre SO/2025/04100 - levering Nørregade 2, 4100 Ringsted', '2025-08-04 10:00:00', '<p>Anne Mortensen, Brugsen.</p>',
  'res.partner', 23, 'Brugsen, Anne Mortensen', 'email', 23, '"Anne Mortensen" <anne.mortensen@brugsen-ringsted.example>', '"Brugsen" <info@brugsen-ringsted.example>', NULL),
 (24, 'INV/2025/08000 og RINV/2025/00008', '2025-08-05 10:00:00', '<p>Jens Peter Hansen</p>',
  'account.move', 8000, 'INV/2025/08000', 'email', 24, 'Jens Peter Hansen <jph@aarhus-post.example>', 'jph@aarhus-post.example', NULL),
 (25, 'Kreditnota RINV/2025/00040, RINV/2025/00012 og RINV/2025/00002', '2025-08-06 10:00:00', '', 'account.move', 40, 'RINV/2025/00040', 'notification', 2, NULL, NULL, NULL),
 (26, 'Pluk WH/OUT/04000: 40 stk, 12 stk, 2 stk, 8 stk til Algade 40, 4000 Roskilde', '2025-08-07 10:00:00', '', 'stock.picking', 4000, 'WH/OUT/04000', 'notification', 2, NULL, NULL, NULL),
 (27, 'Ring 86 12 80 00 eller +45 20 40 00 12 om WH/IN/08000', '2025-08-08 10:00:00', '', 'res.partner', 24, 'Jens Peter Hansen', 'comment', 2,
  '"Jens Peter Hansen" <jph@aarhus-post.example>', NULL, NULL),
 (28, 'Leverancer 4000 Roskilde; 2100 København Ø; 4100 Ringsted; 8000 Aarhus C', '2025-08-09 10:00:00', '', 'res.partner', 22, 'Brugsen', 'comment', 2, NULL, NULL, NULL);

INSERT INTO ir_attachment (name, res_model, res_id, type, store_fname, file_size, checksum, mimetype) VALUES
 ('INV_2025_04000.pdf', 'account.move', 4000, 'binary', 'a1/a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1', 1000, 'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1', 'application/pdf'),
 ('INV_2025_04000 Mette Kjærgaard Sørensen.pdf', 'account.move', 4000, 'binary', 'a2/a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2', 1000, 'a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2', 'application/pdf'),
 ('WH-OUT-04100 Nørregade 2.pdf', 'stock.picking', 4100, 'binary', 'a3/a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3', 1000, 'a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3', 'application/pdf'),
 ('RINV_2025_00040.pdf', 'account.move', 40, 'binary', 'a4/a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4', 1000, 'a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4', 'application/pdf');

INSERT INTO crm_lead (id, name, type, active, partner_id, contact_name, partner_name, email_from, email_normalized, email_cc, phone, street, zip, city) VALUES
 (20, 'Genbestilling INV/2025/04000 - Mette Kjærgaard Sørensen', 'opportunity', true, 20, 'Mette Kjærgaard Sørensen', NULL,
  'mette.kjaergaard@roskilde-post.example', 'mette.kjaergaard@roskilde-post.example', NULL, '+45 46 35 40 00', 'Algade 40', '4000', 'Roskilde'),
 (21, 'Ny butik 4100 Ringsted: 12 paller', 'lead', true, NULL, 'Anne Mortensen', 'Brugsen',
  'anne.mortensen@brugsen-ringsted.example', 'anne.mortensen@brugsen-ringsted.example', 'info@brugsen-ringsted.example', '+45 57 61 41 02', 'Nørregade 2', '4100', 'Ringsted');

INSERT INTO mail_template (id, name, model, subject, body_html, active) VALUES
 (20, '{"en_US": "Danish invoice"}', 'account.move', '{"da_DK": "Faktura {{ object.name }} (INV/2025/04000)", "en_US": "Invoice INV/2025/04000"}',
  '{"da_DK": "<p>Venlig hilsen<br/>Mette Kjærgaard Sørensen<br/>Algade 40, 4000 Roskilde<br/>tlf. 46 35 40 00</p>", "en_US": "<p>Ref. SO/2025/04100, WH/OUT/00008</p>"}', true);

INSERT INTO res_partner_category (id, name, active) VALUES (20, '{"da_DK": "Roskilde 4000", "en_US": "Postcode 4000 customers"}', true);
`

// danishReferences are the texts of danishOdooSQL made of references,
// postcodes, cities and house numbers: anonymisation must leave every
// occurrence of each.
var danishReferences = []string{
	"INV/2025/04000", "S02100", "SO/2025/04100", "INV/2025/08000", "RINV/2025/00008", "RINV/2025/00040", "RINV/2025/00012",
	"RINV/2025/00002", "WH/OUT/04000", "WH/IN/08000", "WH/OUT/00008", "INV_2025_04000", "WH-OUT-04100", "RINV_2025_00040",
	"40 stk, 12 stk, 2 stk, 8 stk", "4000 Roskilde", "2100 København Ø", "4100 Ringsted", "8000 Aarhus C", "2. th, 2100 København Ø",
	"Roskilde 4000", "Postcode 4000 customers", "Ny butik 4100 Ringsted: 12 paller", "Leverancer 4000 Roskilde; 2100 København Ø; 4100 Ringsted; 8000 Aarhus C",
}

// danishPersonal are the Danish customers' names, emails and phones in
// every spelling danishOdooSQL uses, and their street lines: none may be
// left anywhere in the anonymised copy.
var danishPersonal = []string{
	"Mette Kjærgaard Sørensen", "Bo Li", "Brugsen", "Anne Mortensen", "Jens Peter Hansen",
	"mette.kjaergaard@roskilde-post.example", "bo.li@oesterbro-post.example", "info@brugsen-ringsted.example",
	"anne.mortensen@brugsen-ringsted.example", "jph@aarhus-post.example",
	"+45 46 35 40 00", "+4546354000", "46 35 40 00", "+45 20 40 00 12", "20 40 00 12", "+45 31 21 00 12", "+4531210012",
	"+45 57 61 41 00", "+4557614100", "+45 57 61 41 02", "+4557614102", "+45 40 41 00 02", "86 12 80 00", "+4586128000",
	"Algade 40", "Skovvej 12", "Nørregade 2", "Hovedgaden 8",
}

// containsWord reports whether v occurs in text (case-insensitively) as
// whole words: not inside a longer word or number.
func containsWord(text, v string) (string, bool) {
	lt, lv := strings.ToLower(text), strings.ToLower(v)
	for from := 0; ; {
		i := strings.Index(lt[from:], lv)
		if i < 0 {
			return "", false
		}
		i += from
		before, _ := utf8.DecodeLastRuneInString(lt[:i])
		after, _ := utf8.DecodeRuneInString(lt[i+len(lv):])
		word := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }
		if (i == 0 || !word(before)) && (i+len(lv) == len(lt) || !word(after)) {
			start := strings.LastIndexByte(text[:i], '\n') + 1
			end := i + strings.IndexByte(text[i:]+"\n", '\n')
			return text[start:end], true
		}
		from = i + 1
	}
}

// TestOdooAnonymizeKeepsReferences: anonymising a copy whose customers'
// postcodes and house numbers are parts of its document references
// (INV/2025/04000 and postcode 4000) leaves every reference, postcode,
// city and house number in free text exactly as it was (the same count of
// each in a pg_dump), while no name, email, phone or street line of those
// customers is left anywhere in the dump; the fakes stay consistent
// between the columns and the text that quotes them.
func TestOdooAnonymizeKeepsReferences(t *testing.T) {
	h := newHarness(t)
	pg := h.InitCluster("odoo-pg")
	pg.Start()
	loadOdoo17(t, pg, "staging")
	pg.ExecDB("staging", danishOdooSQL)
	wv := h.Walvault(pg.LibpqEnv()...)
	db := openOdooDB(t, pg, "staging")

	before := pg.dumpData("staging")
	counts := map[string]int{}
	for _, r := range danishReferences {
		if counts[r] = strings.Count(before, r); counts[r] == 0 {
			t.Fatalf("reference %q is not in the dump before anonymisation: the check could not fail", r)
		}
	}
	for _, v := range danishPersonal {
		if _, ok := containsWord(before, v); !ok {
			t.Fatalf("personal value %q is not in the dump before anonymisation: the check could not fail", v)
		}
	}

	db.mark()
	wv.MustRun("odoo", "anonymize", "--db", "staging")
	after := pg.dumpData("staging")

	for _, r := range danishReferences {
		if n := strings.Count(after, r); n != counts[r] {
			t.Errorf("reference %q: %d occurrences after anonymisation, %d before", r, n, counts[r])
		}
	}
	for _, v := range danishPersonal {
		if line, ok := containsWord(after, v); ok {
			t.Errorf("%q survives anonymisation, in the line: %s", v, line)
		}
	}

	// The columns themselves were faked (postcode included), and the text
	// quoting them carries the same fakes.
	name := db.one(`SELECT name FROM res_partner WHERE id = 20`)
	db.expect("postcode column faked", `SELECT (zip <> '4000' AND city <> 'Roskilde')::text FROM res_partner WHERE id = 20`, "true")
	db.expect("subject: reference kept, name replaced by the partner's fake", `SELECT subject FROM mail_message WHERE id = 20`,
		"Faktura INV/2025/04000 til "+name)
	db.expect("record name follows complete_name", `SELECT (m.record_name = p.complete_name)::text FROM mail_message m, res_partner p WHERE m.id = 23 AND p.id = 23`, "true")
	db.expect("complete_name follows the fake names", `SELECT (c.complete_name = p.name || ', ' || c.name)::text FROM res_partner c JOIN res_partner p ON p.id = c.parent_id WHERE c.id = 23`, "true")
	db.expect("short name alone", `SELECT (m.record_name = p.name)::text FROM mail_message m, res_partner p WHERE m.id = 22 AND p.id = 21`, "true")
	db.expect("attachment name", `SELECT name FROM ir_attachment WHERE name LIKE 'INV_2025_04000 %'`, "INV_2025_04000 "+name+".pdf")
	db.expect("template still jsonb with both languages", `SELECT (body_html ? 'da_DK' AND subject ->> 'en_US' = 'Invoice INV/2025/04000')::text FROM mail_template WHERE id = 20`, "true")
}
