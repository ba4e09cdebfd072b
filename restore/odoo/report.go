package odoo

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// Change is one step of a Neutralize or Anonymize run: what it did to a
// table (and column), how many rows it changed, or why it was skipped.
type Change struct {
	Table   string `json:"table"`
	Column  string `json:"column,omitempty"`
	Action  string `json:"action"`
	Rows    int64  `json:"rows"`
	Skipped string `json:"skipped,omitempty"` // e.g. "table absent"; Rows is 0
}

// Report lists every step in the order it ran.
type Report struct {
	Database string   `json:"database"`
	Forced   bool     `json:"forced"` // ran on a database not marked as a restored copy
	Changes  []Change `json:"changes"`
}

// Rows is the total of rows changed.
func (r *Report) Rows() int64 {
	var n int64
	for _, c := range r.Changes {
		n += c.Rows
	}
	return n
}

func (r *Report) add(c Change) { r.Changes = append(r.Changes, c) }

func (r *Report) skip(table, column, action, why string) {
	r.add(Change{Table: table, Column: column, Action: action, Skipped: why})
}

// WriteText writes the report as an aligned table.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "TABLE\tCOLUMN\tACTION\tROWS\n")
	for _, c := range r.Changes {
		rows := fmt.Sprint(c.Rows)
		if c.Skipped != "" {
			rows = "skipped: " + c.Skipped
		}
		col := c.Column
		if col == "" {
			col = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Table, col, c.Action, rows)
	}
	fmt.Fprintf(tw, "total\t\t\t%d\n", r.Rows())
	return tw.Flush()
}
