package odoo

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// ErrNotRestoredCopy is returned by Neutralize and Anonymize on a database
// without the RestoredCopyKey mark, unless forced.
var ErrNotRestoredCopy = errors.New("the database is not marked as a restored copy (ir_config_parameter " + RestoredCopyKey +
	"); it may be production: restore a copy with walvault, or pass --force if this really is a copy")

// IsRestoredCopy reports whether the database on conn carries the
// restored-copy mark. A database without ir_config_parameter is not one.
func IsRestoredCopy(ctx context.Context, conn *pgx.Conn) (bool, error) {
	s, err := loadSchema(ctx, conn)
	if err != nil {
		return false, err
	}
	return isRestoredCopy(ctx, conn, s)
}

func isRestoredCopy(ctx context.Context, q db, s schema) (bool, error) {
	if !s.has("ir_config_parameter", "key", "value") {
		return false, nil
	}
	var n int
	if err := q.QueryRow(ctx, `SELECT count(*) FROM ir_config_parameter WHERE key = $1 AND value <> ''`, RestoredCopyKey).Scan(&n); err != nil {
		return false, fmt.Errorf("read %s: %w", RestoredCopyKey, err)
	}
	return n > 0, nil
}

// guarded runs fn in one transaction on conn, on an Odoo database that is a
// marked restored copy (or any Odoo database when force): the one guard of
// Neutralize and Anonymize, which would stop production's mail and crons or
// erase its customers.
func guarded(ctx context.Context, conn *pgx.Conn, force bool, fn func(tx pgx.Tx, s schema) error) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		s, err := loadSchema(ctx, tx)
		if err != nil {
			return err
		}
		if !s.isOdoo() {
			return ErrNotOdoo
		}
		ok, err := isRestoredCopy(ctx, tx, s)
		if err != nil {
			return err
		}
		if !ok && !force {
			return ErrNotRestoredCopy
		}
		return fn(tx, s)
	})
}
