package odoo

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// schema is the tables and columns of the database's current schema:
// table -> column -> data type (information_schema's data_type, e.g.
// "character varying", "jsonb", "integer").
type schema map[string]map[string]string

// db is a connection or a transaction.
type db interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func loadSchema(ctx context.Context, q db) (schema, error) {
	rows, err := q.Query(ctx, `SELECT table_name, column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema()`)
	if err != nil {
		return nil, fmt.Errorf("read the database's tables: %w", err)
	}
	s := schema{}
	for rows.Next() {
		var t, c, dt string
		if err := rows.Scan(&t, &c, &dt); err != nil {
			return nil, fmt.Errorf("read the database's tables: %w", err)
		}
		if s[t] == nil {
			s[t] = map[string]string{}
		}
		s[t][c] = dt
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the database's tables: %w", err)
	}
	return s, nil
}

func (s schema) has(table string, cols ...string) bool {
	t, ok := s[table]
	if !ok {
		return false
	}
	for _, c := range cols {
		if _, ok := t[c]; !ok {
			return false
		}
	}
	return true
}

// missing describes what of table.cols the database lacks, "" if nothing.
func (s schema) missing(table string, cols ...string) string {
	t, ok := s[table]
	if !ok {
		return "table absent"
	}
	var out string
	for _, c := range cols {
		if _, ok := t[c]; !ok {
			if out == "" {
				out = "column absent: " + c
			} else {
				out += ", " + c
			}
		}
	}
	return out
}

func (s schema) isOdoo() bool {
	return s.has("ir_config_parameter", "key", "value") && s.has("ir_module_module", "name", "state")
}

// ident quotes an identifier.
func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

// setParam sets an ir_config_parameter (insert or update) and reports
// whether it changed anything.
func setParam(ctx context.Context, q db, s schema, key, value string) (bool, error) {
	stamp := ""
	if s.has("ir_config_parameter", "write_date") {
		stamp = ", write_date = now() at time zone 'UTC'"
	}
	tag, err := q.Exec(ctx, `UPDATE ir_config_parameter SET value = $2`+stamp+` WHERE key = $1 AND value IS DISTINCT FROM $2`, key, value)
	if err != nil {
		return false, err
	}
	if tag.RowsAffected() > 0 {
		return true, nil
	}
	var exists bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ir_config_parameter WHERE key = $1)`, key).Scan(&exists); err != nil {
		return false, err
	}
	if exists {
		return false, nil
	}
	cols, vals := "key, value", "$1, $2"
	for _, c := range []string{"create_date", "write_date"} {
		if s.has("ir_config_parameter", c) {
			cols += ", " + c
			vals += ", now() at time zone 'UTC'"
		}
	}
	if _, err := q.Exec(ctx, `INSERT INTO ir_config_parameter (`+cols+`) VALUES (`+vals+`)`, key, value); err != nil {
		return false, err
	}
	return true, nil
}
