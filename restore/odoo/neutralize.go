package odoo

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// NeutralizedKey is the ir_config_parameter Odoo (16+) itself sets on a
// neutralized database; Odoo shows a banner when it is "true".
const NeutralizedKey = "database.is_neutralized"

// DummyMailServerName names the mail server Neutralize adds.
const DummyMailServerName = "walvault neutralization: no outgoing mail"

// NeutralizeOptions tune Neutralize.
type NeutralizeOptions struct {
	// Force runs on a database that is not marked as a restored copy.
	Force bool
	// BaseURL, when set, is the copy's own address: web.base.url is set
	// to it and frozen (web.base.url.freeze), so that links, redirects
	// and OAuth or payment return addresses point to the copy. It must
	// pass NormalizeBaseURL.
	BaseURL string
}

// paymentSecretColumns are provider credentials of Odoo's payment modules
// (16-18): a test-mode provider must not hold live keys.
var paymentSecretColumns = []string{
	"stripe_secret_key", "stripe_publishable_key", "stripe_webhook_secret",
	"paypal_email_account", "paypal_pdt_token", "paypal_seller_account", "paypal_client_id", "paypal_client_secret", "paypal_webhook_id",
	"adyen_api_key", "adyen_hmac_key", "adyen_client_key", "adyen_merchant_account",
	"authorize_login", "authorize_transaction_key", "authorize_signature_key", "authorize_client_key",
	"mollie_api_key", "razorpay_key_id", "razorpay_key_secret", "razorpay_webhook_secret",
	"mercado_pago_access_token", "flutterwave_secret_key", "flutterwave_webhook_secret",
	"xendit_secret_key", "xendit_webhook_token", "aps_access_code", "aps_sha_request", "aps_sha_response",
	"buckaroo_secret_key", "ogone_shakey_in", "ogone_shakey_out", "ogone_password",
	"payumoney_merchant_salt", "sips_secret", "alipay_md5_signature_key", "khalti_secret_key",
}

// calendarTokenColumns are the Google and Microsoft calendar sync tokens:
// on res_users_settings since Odoo 16, on res_users before.
var calendarTokenColumns = []string{
	"google_calendar_rtoken", "google_calendar_token", "google_calendar_token_validity", "google_calendar_sync_token",
	"microsoft_calendar_rtoken", "microsoft_calendar_token", "microsoft_calendar_token_validity", "microsoft_calendar_sync_token",
}

// Neutralize applies Odoo's neutralization to the database on conn, in one
// transaction: outgoing mail servers off (plus an active dummy server on
// host "invalid", so that Odoo does not fall back to the smtp_server of
// odoo.conf), scheduled actions off except the autovacuum job, mail
// fetching off, templates no longer pinned to a server, payment providers
// in test mode without credentials, carriers out of production, IAP tokens
// disabled, OAuth providers disabled, calendar sync tokens cleared,
// webhooks off, a new database.uuid and database.secret unless walvault
// already gave the copy its own (see renewIdentity), web.base.url set and
// frozen when opts.BaseURL is set, and database.is_neutralized set.
// Running it again changes nothing.
func Neutralize(ctx context.Context, conn *pgx.Conn, opts NeutralizeOptions) (Report, error) {
	if opts.BaseURL != "" {
		u, err := NormalizeBaseURL(opts.BaseURL)
		if err != nil {
			return Report{}, err
		}
		opts.BaseURL = u
	}
	rep := Report{Database: conn.Config().Database, Forced: opts.Force}
	err := guarded(ctx, conn, opts.Force, func(tx pgx.Tx, s schema) error {
		n := neutralizer{ctx: ctx, tx: tx, s: s, rep: &rep, opts: opts}
		return n.run()
	})
	if err != nil {
		return Report{}, err
	}
	return rep, nil
}

type neutralizer struct {
	ctx  context.Context
	tx   pgx.Tx
	s    schema
	rep  *Report
	opts NeutralizeOptions
}

// update runs an UPDATE of table if it has cols, and records the rows it
// changed. The statement's WHERE must exclude rows already neutralized, so
// that a second run reports 0.
func (n *neutralizer) update(table, action string, cols []string, sql string, args ...any) error {
	if why := n.s.missing(table, cols...); why != "" {
		n.rep.skip(table, strings.Join(cols, ","), action, why)
		return nil
	}
	tag, err := n.tx.Exec(n.ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("neutralize %s (%s): %w", table, action, err)
	}
	n.rep.add(Change{Table: table, Column: strings.Join(cols, ","), Action: action, Rows: tag.RowsAffected()})
	return nil
}

// nullColumns sets every present column of cols to NULL in table, one
// statement for all, counting rows where any was set.
func (n *neutralizer) nullColumns(table, action string, cols []string) error {
	var present []string
	for _, c := range cols {
		if n.s.has(table, c) {
			present = append(present, c)
		}
	}
	if len(present) == 0 {
		n.rep.skip(table, "", action, n.s.missing(table, cols...))
		return nil
	}
	sets, conds := make([]string, len(present)), make([]string, len(present))
	for i, c := range present {
		sets[i] = ident(c) + " = NULL"
		conds[i] = ident(c) + " IS NOT NULL"
	}
	return n.update(table, action, present,
		"UPDATE "+ident(table)+" SET "+strings.Join(sets, ", ")+" WHERE "+strings.Join(conds, " OR "))
}

func (n *neutralizer) run() error {
	steps := []func() error{
		n.mailServers,
		n.crons,
		func() error {
			return n.update("fetchmail_server", "deactivate", []string{"active"},
				`UPDATE fetchmail_server SET active = false WHERE active`)
		},
		func() error {
			return n.update("mail_template", "unset mail server", []string{"mail_server_id"},
				`UPDATE mail_template SET mail_server_id = NULL WHERE mail_server_id IS NOT NULL`)
		},
		n.payment,
		func() error {
			return n.update("delivery_carrier", "out of production", []string{"prod_environment"},
				`UPDATE delivery_carrier SET prod_environment = false WHERE prod_environment`)
		},
		func() error {
			// As Odoo does: a "+disabled" suffix makes the IAP server refuse
			// the token, and removing it restores the account.
			return n.update("iap_account", "disable token", []string{"account_token"},
				`UPDATE iap_account SET account_token = regexp_replace(account_token, '(\+.*)?$', '+disabled')
				 WHERE account_token IS NOT NULL AND account_token NOT LIKE '%+disabled'`)
		},
		func() error {
			return n.update("auth_oauth_provider", "disable", []string{"enabled"},
				`UPDATE auth_oauth_provider SET enabled = false WHERE enabled`)
		},
		func() error {
			if n.s.has("res_users_settings") {
				return n.nullColumns("res_users_settings", "clear calendar tokens", calendarTokenColumns)
			}
			return n.nullColumns("res_users", "clear calendar tokens", calendarTokenColumns)
		},
		n.webhooks,
		n.identity,
		n.baseURL,
		func() error {
			changed, err := setParam(n.ctx, n.tx, n.s, NeutralizedKey, "true")
			if err != nil {
				return fmt.Errorf("set %s: %w", NeutralizedKey, err)
			}
			rows := int64(0)
			if changed {
				rows = 1
			}
			n.rep.add(Change{Table: "ir_config_parameter", Column: NeutralizedKey, Action: "set true", Rows: rows})
			return nil
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// identity gives the copy its own database.uuid and database.secret: with
// production's secret it would accept production's session cookies and
// signed links (and mint ones production accepts).
func (n *neutralizer) identity() error {
	rows, err := renewIdentity(n.ctx, n.tx, n.s, false)
	if err != nil {
		return fmt.Errorf("neutralize: %w", err)
	}
	n.rep.add(Change{Table: "ir_config_parameter", Column: UUIDKey + "," + SecretKey, Action: "new values", Rows: rows})
	return nil
}

// baseURL points web.base.url at the copy, frozen.
func (n *neutralizer) baseURL() error {
	if n.opts.BaseURL == "" {
		return nil
	}
	var rows int64
	for _, p := range []struct{ key, value string }{{BaseURLKey, n.opts.BaseURL}, {BaseURLFreezeKey, "True"}} {
		changed, err := setParam(n.ctx, n.tx, n.s, p.key, p.value)
		if err != nil {
			return fmt.Errorf("set %s: %w", p.key, err)
		}
		if changed {
			rows++
		}
	}
	n.rep.add(Change{Table: "ir_config_parameter", Column: BaseURLKey + "," + BaseURLFreezeKey, Action: "set to the copy's address, frozen", Rows: rows})
	return nil
}

func (n *neutralizer) mailServers() error {
	if err := n.update("ir_mail_server", "deactivate", []string{"active"},
		`UPDATE ir_mail_server SET active = false WHERE active AND name IS DISTINCT FROM $1`, DummyMailServerName); err != nil {
		return err
	}
	if !n.s.has("ir_mail_server", "active", "name", "smtp_host", "smtp_port") {
		return nil
	}
	var exists bool
	if err := n.tx.QueryRow(n.ctx, `SELECT EXISTS (SELECT 1 FROM ir_mail_server WHERE name = $1)`, DummyMailServerName).Scan(&exists); err != nil {
		return fmt.Errorf("neutralize ir_mail_server: %w", err)
	}
	if exists {
		tag, err := n.tx.Exec(n.ctx, `UPDATE ir_mail_server SET active = true, smtp_host = 'invalid' WHERE name = $1 AND (NOT active OR smtp_host <> 'invalid')`, DummyMailServerName)
		if err != nil {
			return fmt.Errorf("neutralize ir_mail_server: %w", err)
		}
		n.rep.add(Change{Table: "ir_mail_server", Action: "dummy server on host invalid", Rows: tag.RowsAffected()})
		return nil
	}
	cols := []string{"name", "smtp_host", "smtp_port", "active"}
	vals := []string{"$1", "'invalid'", "1025", "true"}
	for _, c := range []struct{ col, val string }{
		{"smtp_encryption", "'none'"}, {"smtp_authentication", "'login'"}, {"sequence", "0"},
		{"create_date", "now() at time zone 'UTC'"}, {"write_date", "now() at time zone 'UTC'"},
	} {
		if n.s.has("ir_mail_server", c.col) {
			cols, vals = append(cols, c.col), append(vals, c.val)
		}
	}
	tag, err := n.tx.Exec(n.ctx, "INSERT INTO ir_mail_server ("+strings.Join(cols, ", ")+") VALUES ("+strings.Join(vals, ", ")+")", DummyMailServerName)
	if err != nil {
		return fmt.Errorf("neutralize ir_mail_server: add the dummy server: %w", err)
	}
	n.rep.add(Change{Table: "ir_mail_server", Action: "dummy server on host invalid", Rows: tag.RowsAffected()})
	return nil
}

func (n *neutralizer) crons() error {
	keep := `FALSE`
	if n.s.has("ir_model_data", "module", "name", "model", "res_id") {
		keep = `id IN (SELECT res_id FROM ir_model_data WHERE model = 'ir.cron' AND module = 'base' AND name = 'autovacuum_job')`
	}
	return n.update("ir_cron", "deactivate (autovacuum kept)", []string{"active"},
		`UPDATE ir_cron SET active = false WHERE active AND NOT (`+keep+`)`)
}

func (n *neutralizer) payment() error {
	switch {
	case n.s.has("payment_provider", "is_live"):
		// Odoo 19 replaced the state selection with is_live.
		if err := n.update("payment_provider", "out of live mode", []string{"is_live"},
			`UPDATE payment_provider SET is_live = false WHERE is_live`); err != nil {
			return err
		}
	case n.s.has("payment_provider"):
		if err := n.update("payment_provider", "test mode", []string{"state"},
			`UPDATE payment_provider SET state = 'test' WHERE state = 'enabled'`); err != nil {
			return err
		}
	case n.s.has("payment_acquirer"):
		// Odoo 15 and older.
		if err := n.update("payment_acquirer", "test mode", []string{"state"},
			`UPDATE payment_acquirer SET state = 'test' WHERE state = 'enabled'`); err != nil {
			return err
		}
		return n.nullColumns("payment_acquirer", "clear credentials", paymentSecretColumns)
	default:
		n.rep.skip("payment_provider", "", "test mode", "table absent")
		return nil
	}
	return n.nullColumns("payment_provider", "clear credentials", paymentSecretColumns)
}

// webhooks: Odoo 17+ server actions can POST to a URL (state 'webhook')
// and automation rules can be triggered by an incoming webhook. The
// outgoing URL is cleared (the action then fails instead of calling
// production's partner) and the automations that send or receive webhooks
// are deactivated.
func (n *neutralizer) webhooks() error {
	if err := n.update("ir_act_server", "clear webhook url", []string{"state", "webhook_url"},
		`UPDATE ir_act_server SET webhook_url = NULL WHERE state = 'webhook' AND webhook_url IS NOT NULL`); err != nil {
		return err
	}
	cond := `FALSE`
	if n.s.has("base_automation", "trigger") {
		cond = `"trigger" = 'on_webhook'`
	}
	if n.s.has("ir_act_server", "state", "base_automation_id") {
		cond += ` OR id IN (SELECT base_automation_id FROM ir_act_server WHERE state = 'webhook' AND base_automation_id IS NOT NULL)`
	}
	return n.update("base_automation", "deactivate webhook automations", []string{"active"},
		`UPDATE base_automation SET active = false WHERE active AND (`+cond+`)`)
}
