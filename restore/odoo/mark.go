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
// walvault.restored_copy in the database conn is connected to, and gives
// the copy its own identity: a new database.uuid and database.secret (see
// renewIdentity), so that it neither accepts production's sessions and
// signed links nor passes for production with Odoo's services. Both in one
// transaction. It returns ErrNotOdoo when the database has no
// ir_config_parameter table.
func MarkRestoredCopy(ctx context.Context, conn *pgx.Conn, info RestoredCopy) error {
	value, err := json.Marshal(info)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		s, err := loadSchema(ctx, tx)
		if err != nil {
			return err
		}
		if !s.has("ir_config_parameter", "key", "value") {
			return ErrNotOdoo
		}
		if _, err := setParam(ctx, tx, s, RestoredCopyKey, string(value)); err != nil {
			return err
		}
		_, err = renewIdentity(ctx, tx, s, true)
		return err
	})
	if err != nil && !errors.Is(err, ErrNotOdoo) {
		return fmt.Errorf("mark restored copy: %w", err)
	}
	return err
}
