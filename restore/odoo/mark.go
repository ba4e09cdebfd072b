package odoo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// RestoredCopyKey is the ir_config_parameter key MarkRestoredCopy sets.
const RestoredCopyKey = "walvault.restored_copy"

// ErrNotOdoo: the database lacks Odoo's ir_config_parameter table (or, for
// neutralize and anonymize, ir_module_module).
var ErrNotOdoo = errors.New("not an Odoo database (no ir_config_parameter or ir_module_module table)")

// RestoredCopy describes where a restored database came from. It is stored
// as JSON under RestoredCopyKey.
type RestoredCopy struct {
	// Database is the name the database had in the backup.
	Database string `json:"database"`
	// Backup is the backup id restored.
	Backup string `json:"backup"`
	// Target is the recovery target, as walvault describes it.
	Target string `json:"target"`
	// RestoredAt is when walvault restored it (UTC).
	RestoredAt time.Time `json:"restored_at"`
}

// MarkRestoredCopy records info under ir_config_parameter
// walvault.restored_copy in the database conn is connected to. It returns
// ErrNotOdoo when the database has no ir_config_parameter table.
func MarkRestoredCopy(ctx context.Context, conn *pgx.Conn, info RestoredCopy) error {
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT to_regclass('ir_config_parameter') IS NOT NULL").Scan(&exists); err != nil {
		return fmt.Errorf("mark restored copy: %w", err)
	}
	if !exists {
		return ErrNotOdoo
	}
	value, err := json.Marshal(info)
	if err != nil {
		return err
	}
	// Update, else insert: Odoo's unique constraint on key is not something
	// to rely on in every version, and one statement at a time is enough
	// on a server nobody else uses yet.
	tag, err := conn.Exec(ctx, `UPDATE ir_config_parameter SET value = $2, write_date = now() AT TIME ZONE 'UTC' WHERE key = $1`, RestoredCopyKey, string(value))
	if err != nil {
		return fmt.Errorf("mark restored copy: %w", err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := conn.Exec(ctx, `INSERT INTO ir_config_parameter (key, value, create_date, write_date)
			VALUES ($1, $2, now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC')`, RestoredCopyKey, string(value)); err != nil {
			return fmt.Errorf("mark restored copy: %w", err)
		}
	}
	return nil
}
