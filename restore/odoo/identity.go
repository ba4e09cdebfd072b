package odoo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The ir_config_parameter keys of an Odoo database's identity.
const (
	// UUIDKey identifies the database to Odoo's services (subscription,
	// IAP, odoo.com OAuth).
	UUIDKey = "database.uuid"
	// SecretKey is the HMAC key of session tokens, access tokens and
	// signed links: a copy that shares it accepts production's sessions
	// and links, and mints tokens production accepts.
	SecretKey = "database.secret"
	// BaseURLKey is the address Odoo puts in links, redirects and mails;
	// BaseURLFreezeKey stops Odoo from resetting it when an administrator
	// logs in.
	BaseURLKey       = "web.base.url"
	BaseURLFreezeKey = "web.base.url.freeze"
	// CopyUUIDKey is walvault's record of the database.uuid it gave a
	// copy: while database.uuid equals it, the copy already has its own
	// identity and Neutralize leaves it alone.
	CopyUUIDKey = "walvault.copy_uuid"
)

// ErrBaseURL: a base URL that is not an absolute http(s) address.
var ErrBaseURL = errors.New("the base URL must be an absolute http:// or https:// address without user, query or fragment")

// NormalizeBaseURL checks a staging address for web.base.url and returns it
// without a trailing slash, as Odoo stores it.
func NormalizeBaseURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("%q: %w", s, ErrBaseURL)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// newUUID4 is a random (version 4) UUID in its usual text form, as Odoo
// makes database.secret (Odoo makes database.uuid with uuid1, of the same
// form; a random one does not reveal the machine and time).
func newUUID4() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("draw a uuid: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// renewIdentity gives the database a new database.uuid and
// database.secret, as Odoo's own duplicate does (ir.config_parameter's
// init(force=True)), and records the uuid under CopyUUIDKey. Parameters
// the database lacks are not created (Odoo creates them when it starts).
// An odoo.com OAuth provider whose client_id was the old uuid gets the new
// one, as Odoo's auth_oauth does on a duplicate. Unless always, a database
// whose uuid is already the one walvault gave it is left alone, so that
// neutralizing twice does not log the copy's users out twice. It reports
// how many parameters changed.
func renewIdentity(ctx context.Context, q db, s schema, always bool) (int64, error) {
	read := func(key string) (*string, error) {
		var v *string
		err := q.QueryRow(ctx, `SELECT value FROM ir_config_parameter WHERE key = $1`, key).Scan(&v)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("read %s: %w", key, err)
		}
		return v, nil
	}
	oldUUID, err := read(UUIDKey)
	if err != nil {
		return 0, err
	}
	copyUUID, err := read(CopyUUIDKey)
	if err != nil {
		return 0, err
	}
	if !always && oldUUID != nil && copyUUID != nil && *oldUUID == *copyUUID {
		return 0, nil
	}
	var changed int64
	for _, key := range []string{UUIDKey, SecretKey} {
		v, err := newUUID4()
		if err != nil {
			return changed, err
		}
		ok, err := replaceParam(ctx, q, s, key, v)
		if err != nil {
			return changed, fmt.Errorf("set a new %s: %w", key, err)
		}
		if !ok {
			continue
		}
		changed++
		if key != UUIDKey {
			continue
		}
		if _, err := setParam(ctx, q, s, CopyUUIDKey, v); err != nil {
			return changed, fmt.Errorf("set %s: %w", CopyUUIDKey, err)
		}
		if oldUUID != nil && s.has("auth_oauth_provider", "client_id") {
			if _, err := q.Exec(ctx, `UPDATE auth_oauth_provider SET client_id = $1 WHERE client_id = $2`, v, *oldUUID); err != nil {
				return changed, fmt.Errorf("auth_oauth_provider: the new %s: %w", UUIDKey, err)
			}
		}
	}
	return changed, nil
}

// replaceParam sets an existing ir_config_parameter, reporting whether
// there was one.
func replaceParam(ctx context.Context, q db, s schema, key, value string) (bool, error) {
	stamp := ""
	if s.has("ir_config_parameter", "write_date") {
		stamp = ", write_date = now() at time zone 'UTC'"
	}
	tag, err := q.Exec(ctx, `UPDATE ir_config_parameter SET value = $2`+stamp+` WHERE key = $1`, key, value)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() > 0, nil
}
