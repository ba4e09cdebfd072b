package odoo

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// AnonymizedKey is the ir_config_parameter Anonymize sets to the time it ran.
const AnonymizedKey = "walvault.anonymized"

// AnonymizeOptions tune Anonymize.
type AnonymizeOptions struct {
	// Force runs on a database that is not marked as a restored copy.
	Force bool
	// KeepLogins are res_users logins left untouched, with their password
	// (e.g. "admin", so that someone can log in to the copy).
	KeepLogins []string
	// Key is the HMAC key of the fakes; nil draws a random one. Tests set
	// it; nobody else should (a known key lets anyone test guesses).
	Key []byte
	// BatchSize is how many rows are read and written at a time (default
	// 2000).
	BatchSize int
}

// Anonymize replaces personal data in the Odoo database on conn following
// rules (nil: DefaultRules), in one transaction, and records the time in
// ir_config_parameter walvault.anonymized. The report lists, per table and
// column, the rows changed and what was skipped because absent.
func Anonymize(ctx context.Context, conn *pgx.Conn, rules *Rules, opts AnonymizeOptions) (Report, error) {
	if rules == nil {
		rules = DefaultRules()
	}
	key := opts.Key
	if key == nil {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return Report{}, fmt.Errorf("draw the anonymisation key: %w", err)
		}
	}
	if opts.BatchSize <= 0 {
		opts.BatchSize = 2000
	}
	rep := Report{Database: conn.Config().Database, Forced: opts.Force}
	err := guarded(ctx, conn, opts.Force, func(tx pgx.Tx, s schema) error {
		f := &faker{key: key}
		a := &anonymizer{ctx: ctx, tx: tx, s: s, rep: &rep, f: f, opts: opts, scrub: newScrubber(f)}
		// Fakes, nulls and constants first, then the scrubs, which need to
		// know every original the run replaced.
		for _, t := range rules.Tables {
			if err := a.table(t, false); err != nil {
				return err
			}
		}
		for _, t := range rules.Tables {
			if err := a.table(t, true); err != nil {
				return err
			}
		}
		if _, err := setParam(ctx, tx, s, AnonymizedKey, time.Now().UTC().Format(time.RFC3339)); err != nil {
			return fmt.Errorf("set %s: %w", AnonymizedKey, err)
		}
		return nil
	})
	if err != nil {
		return Report{}, err
	}
	return rep, nil
}

type anonymizer struct {
	ctx  context.Context
	tx   pgx.Tx
	s    schema
	rep  *Report
	f    *faker
	opts AnonymizeOptions
	// scrub learns the originals the fakes replace, then rewrites free
	// text (scrub.go).
	scrub *scrubber
}

// where is the rule's row condition, plus the kept logins on res_users.
func (a *anonymizer) where(t TableRule) (string, []any) {
	conds := []string{"TRUE"}
	var args []any
	if t.Where != "" {
		conds = append(conds, "("+t.Where+")")
	}
	if t.Table == "res_users" && len(a.opts.KeepLogins) > 0 && a.s.has("res_users", "login") {
		args = append(args, a.opts.KeepLogins)
		conds = append(conds, fmt.Sprintf("NOT (login = ANY($%d))", len(args)))
	}
	return strings.Join(conds, " AND "), args
}

// table runs the scrub columns of t (scrubs true) or all the others.
func (a *anonymizer) table(t TableRule, scrubs bool) error {
	var cols []ColumnRule
	for _, c := range t.Columns {
		if (c.Action.Kind == ActScrub) == scrubs {
			cols = append(cols, c)
		}
	}
	if len(cols) == 0 {
		return nil
	}
	var present []ColumnRule
	for _, c := range cols {
		if why := a.s.missing(t.Table, c.Column); why != "" {
			a.rep.skip(t.Table, c.Column, c.Action.String(), why)
			continue
		}
		present = append(present, c)
	}
	if len(present) == 0 {
		return nil
	}
	var fakes []ColumnRule
	for _, c := range present {
		switch c.Action.Kind {
		case ActNull, ActValue:
			if err := a.setConst(t, c); err != nil {
				return err
			}
		case ActFake, ActScrub:
			fakes = append(fakes, c)
		}
	}
	if len(fakes) == 0 {
		return nil
	}
	if !a.s.has(t.Table, "id") {
		for _, c := range fakes {
			a.rep.skip(t.Table, c.Column, c.Action.String(), "no id column")
		}
		return nil
	}
	return a.rewrite(t, fakes)
}

// castable is the type name to cast text to for a column.
func (a *anonymizer) castable(table, col string) (string, error) {
	dt := a.s[table][col]
	if dt == "ARRAY" || dt == "USER-DEFINED" {
		return "", fmt.Errorf("anonymize %s.%s: columns of type %s are not supported; use null", table, col, dt)
	}
	return dt, nil
}

func (a *anonymizer) setConst(t TableRule, c ColumnRule) error {
	where, args := a.where(t)
	col := ident(c.Column)
	var sql string
	if c.Action.Kind == ActNull {
		sql = fmt.Sprintf("UPDATE %s SET %s = NULL WHERE %s IS NOT NULL AND %s", ident(t.Table), col, col, where)
	} else {
		typ, err := a.castable(t.Table, c.Column)
		if err != nil {
			return err
		}
		args = append(args, c.Action.Value)
		v := fmt.Sprintf("CAST($%d::text AS %s)", len(args), typ)
		sql = fmt.Sprintf("UPDATE %s SET %s = %s WHERE %s IS DISTINCT FROM %s AND %s", ident(t.Table), col, v, col, v, where)
	}
	tag, err := a.tx.Exec(a.ctx, sql, args...)
	if err != nil {
		return fmt.Errorf("anonymize %s.%s (%s): %w", t.Table, c.Column, c.Action, err)
	}
	a.rep.add(Change{Table: t.Table, Column: c.Column, Action: c.Action.String(), Rows: tag.RowsAffected()})
	return nil
}

// rewrite reads the rows of t in id order, batch by batch, computes the new
// values of cols in Go and writes back the rows that changed.
func (a *anonymizer) rewrite(t TableRule, cols []ColumnRule) error {
	where, args := a.where(t)
	types := make([]string, len(cols))
	sel := []string{"id"}
	for i, c := range cols {
		typ, err := a.castable(t.Table, c.Column)
		if err != nil {
			return err
		}
		types[i] = typ
		sel = append(sel, ident(c.Column)+"::text")
	}
	idArg := len(args) + 1
	query := fmt.Sprintf("SELECT %s FROM %s WHERE id > $%d::bigint AND %s ORDER BY id LIMIT %d",
		strings.Join(sel, ", "), ident(t.Table), idArg, where, a.opts.BatchSize)
	sets := make([]string, len(cols))
	vcols := []string{"id"}
	for i, c := range cols {
		sets[i] = fmt.Sprintf("%s = CASE WHEN v.c%d_set THEN v.c%d::%s ELSE t.%s END", ident(c.Column), i, i, types[i], ident(c.Column))
		vcols = append(vcols, fmt.Sprintf("c%d", i), fmt.Sprintf("c%d_set", i))
	}
	unnest := []string{"$1::int[]"}
	for i := range cols {
		unnest = append(unnest, fmt.Sprintf("$%d::text[]", 2+2*i), fmt.Sprintf("$%d::bool[]", 3+2*i))
	}
	update := fmt.Sprintf("UPDATE %s AS t SET %s FROM unnest(%s) AS v(%s) WHERE t.id = v.id",
		ident(t.Table), strings.Join(sets, ", "), strings.Join(unnest, ", "), strings.Join(vcols, ", "))

	counts := make([]int64, len(cols))
	last := int64(-1 << 62) // below any id
	for {
		rows, err := a.tx.Query(a.ctx, query, append(append([]any{}, args...), last)...)
		if err != nil {
			return fmt.Errorf("anonymize %s: read: %w", t.Table, err)
		}
		var ids []int64
		var vals [][]*string
		for rows.Next() {
			var id int64
			row := make([]*string, len(cols))
			dest := []any{&id}
			for i := range row {
				dest = append(dest, &row[i])
			}
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return fmt.Errorf("anonymize %s: read: %w", t.Table, err)
			}
			ids = append(ids, id)
			vals = append(vals, row)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("anonymize %s: read: %w", t.Table, err)
		}
		if len(ids) == 0 {
			break
		}
		last = ids[len(ids)-1]

		var outIDs []int64
		newVals := make([][]*string, len(cols))
		setFlags := make([][]bool, len(cols))
		for r, id := range ids {
			changed := false
			row := make([]*string, len(cols))
			flags := make([]bool, len(cols))
			for i, c := range cols {
				old := vals[r][i]
				if old == nil {
					continue
				}
				nv, err := a.newValue(t.Table, c, types[i], *old)
				if err != nil {
					return err
				}
				if nv != *old {
					row[i], flags[i] = &nv, true
					counts[i]++
					changed = true
				}
			}
			if changed {
				outIDs = append(outIDs, id)
				for i := range cols {
					newVals[i] = append(newVals[i], row[i])
					setFlags[i] = append(setFlags[i], flags[i])
				}
			}
		}
		if len(outIDs) > 0 {
			uargs := []any{outIDs}
			for i := range cols {
				uargs = append(uargs, newVals[i], setFlags[i])
			}
			if _, err := a.tx.Exec(a.ctx, update, uargs...); err != nil {
				return fmt.Errorf("anonymize %s: write: %w", t.Table, err)
			}
		}
		if len(ids) < a.opts.BatchSize {
			break
		}
	}
	for i, c := range cols {
		a.rep.add(Change{Table: t.Table, Column: c.Column, Action: c.Action.String(), Rows: counts[i]})
	}
	return nil
}

// newValue is the replacement of one non-NULL value (as text).
func (a *anonymizer) newValue(table string, c ColumnRule, typ, old string) (string, error) {
	if c.Action.Kind == ActScrub {
		if typ == "jsonb" {
			nv, err := a.scrub.json(old)
			if err != nil {
				return "", fmt.Errorf("anonymize %s.%s: %w", table, c.Column, err)
			}
			return nv, nil
		}
		return a.scrub.text(old), nil
	}
	if c.Action.Fake == "date" {
		d, err := time.Parse("2006-01-02", old)
		if err != nil {
			return "", fmt.Errorf("anonymize %s.%s: fake:date needs a date column (got %q)", table, c.Column, old)
		}
		return a.f.fakeDate(d).Format("2006-01-02"), nil
	}
	if strings.TrimSpace(old) == "" {
		return old, nil
	}
	nv := a.f.fake(c.Action.Fake, old)
	a.scrub.remember(c.Action.Fake, old, nv)
	return nv, nil
}
