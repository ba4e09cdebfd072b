package odoo

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// RulesVersion is the version of the rule file format this package reads.
const RulesVersion = 1

//go:embed default_rules.yaml
var defaultRulesYAML []byte

// Rules is an anonymisation rule set (docs/ANONYMIZE.md).
type Rules struct {
	Version int
	// ReplaceDefault, in a user's file, drops the default rules instead of
	// merging with them.
	ReplaceDefault bool
	Tables         []TableRule
}

// TableRule says what to do with some columns of the rows of one table
// that match Where (all rows when empty).
type TableRule struct {
	Table   string
	Where   string // an SQL condition on the table's rows
	Columns []ColumnRule
}

// ColumnRule is one column's action.
type ColumnRule struct {
	Column string
	Action Action
}

// ActionKind is what happens to a column.
type ActionKind string

// The action kinds of a rule file.
const (
	ActFake  ActionKind = "fake"  // a consistent fake value of Action.Fake's kind
	ActScrub ActionKind = "scrub" // replace, inside the text, every email address and every original value faked by this run
	ActNull  ActionKind = "null"  // set NULL
	ActValue ActionKind = "value" // set a constant (Action.Value, cast to the column's type)
	ActKeep  ActionKind = "keep"  // leave alone (in a user's file: cancels a default rule)
)

// Action is a parsed column action.
type Action struct {
	Kind  ActionKind
	Fake  string // for ActFake: one of FakeKinds
	Value string // for ActValue
}

func (a Action) String() string {
	switch a.Kind {
	case ActFake:
		return "fake:" + a.Fake
	case ActValue:
		return "value"
	}
	return string(a.Kind)
}

// FakeKinds lists the kinds of fake values.
var FakeKinds = []string{"name", "company", "email", "login", "phone", "street", "city", "zip", "vat", "url", "iban", "code", "date", "token"}

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// ErrRules wraps every error of a rule file.
var ErrRules = errors.New("anonymisation rules")

func rulesErr(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrRules}, a...)...)
}

// fileRules is the YAML shape.
type fileRules struct {
	Version        int         `yaml:"version"`
	ReplaceDefault bool        `yaml:"replace_default"`
	Tables         []fileTable `yaml:"tables"`
}

type fileTable struct {
	Table   string    `yaml:"table"`
	Where   string    `yaml:"where"`
	Columns yaml.Node `yaml:"columns"`
}

// ParseRules reads a rule file. It rejects unknown keys, versions, actions
// and fake kinds, and names that are not plain lower-case identifiers.
func ParseRules(b []byte) (*Rules, error) {
	var f fileRules
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, rulesErr("%v", err)
	}
	if f.Version != RulesVersion {
		return nil, rulesErr("version %d is not supported (this walvault reads version %d)", f.Version, RulesVersion)
	}
	r := &Rules{Version: f.Version, ReplaceDefault: f.ReplaceDefault}
	for i, t := range f.Tables {
		if !identRE.MatchString(t.Table) {
			return nil, rulesErr("tables[%d]: table %q is not a plain lower-case name", i, t.Table)
		}
		if strings.Contains(t.Where, ";") {
			return nil, rulesErr("table %s: where must be one condition, without ';'", t.Table)
		}
		tr := TableRule{Table: t.Table, Where: strings.TrimSpace(t.Where)}
		if t.Columns.Kind != yaml.MappingNode {
			return nil, rulesErr("table %s: columns must be a mapping of column: action", t.Table)
		}
		seen := map[string]bool{}
		for j := 0; j+1 < len(t.Columns.Content); j += 2 {
			k, v := t.Columns.Content[j], t.Columns.Content[j+1]
			if k.Kind != yaml.ScalarNode || !identRE.MatchString(k.Value) {
				return nil, rulesErr("table %s: column %q is not a plain lower-case name", t.Table, k.Value)
			}
			if seen[k.Value] {
				return nil, rulesErr("table %s: column %s given twice", t.Table, k.Value)
			}
			seen[k.Value] = true
			if v.Kind != yaml.ScalarNode {
				return nil, rulesErr("table %s column %s: the action must be a string", t.Table, k.Value)
			}
			act, err := parseAction(v)
			if err != nil {
				return nil, rulesErr("table %s column %s: %v", t.Table, k.Value, err)
			}
			tr.Columns = append(tr.Columns, ColumnRule{Column: k.Value, Action: act})
		}
		if len(tr.Columns) == 0 {
			return nil, rulesErr("table %s: no columns", t.Table)
		}
		r.Tables = append(r.Tables, tr)
	}
	return r, nil
}

func parseAction(v *yaml.Node) (Action, error) {
	if v.Tag == "!!null" {
		return Action{Kind: ActNull}, nil
	}
	s := v.Value
	kind, arg, hasArg := strings.Cut(s, ":")
	switch ActionKind(strings.TrimSpace(kind)) {
	case ActFake:
		arg = strings.TrimSpace(arg)
		for _, k := range FakeKinds {
			if k == arg {
				return Action{Kind: ActFake, Fake: arg}, nil
			}
		}
		return Action{}, fmt.Errorf("fake kind %q is not one of %s", arg, strings.Join(FakeKinds, ", "))
	case ActValue:
		if !hasArg {
			return Action{}, errors.New(`value needs the text after a colon ("value:<p>hidden</p>")`)
		}
		return Action{Kind: ActValue, Value: arg}, nil
	case ActScrub, ActNull, ActKeep:
		if hasArg {
			return Action{}, fmt.Errorf("%s takes no argument", kind)
		}
		return Action{Kind: ActionKind(kind)}, nil
	}
	return Action{}, fmt.Errorf("action %q is not fake:<kind>, scrub, null, value:<text> or keep", s)
}

// DefaultRules is the embedded default rule set (restore/odoo/default_rules.yaml).
func DefaultRules() *Rules {
	r, err := ParseRules(defaultRulesYAML)
	if err != nil {
		panic("walvault: the embedded anonymisation rules do not parse: " + err.Error()) // a build defect, caught by the tests
	}
	return r
}

// Merge combines the default rules d with a user's rules u: u alone when it
// says replace_default; otherwise d's rules, where every column that u also
// names for the same table (whatever the where) is dropped, followed by
// u's. keep actions are then removed.
func Merge(d, u *Rules) *Rules {
	if u == nil {
		return d
	}
	if u.ReplaceDefault || d == nil {
		return dropKeeps(u)
	}
	type key struct{ table, col string }
	override := map[key]bool{}
	for _, t := range u.Tables {
		for _, c := range t.Columns {
			override[key{t.Table, c.Column}] = true
		}
	}
	out := &Rules{Version: RulesVersion}
	for _, t := range d.Tables {
		nt := TableRule{Table: t.Table, Where: t.Where}
		for _, c := range t.Columns {
			if !override[key{t.Table, c.Column}] {
				nt.Columns = append(nt.Columns, c)
			}
		}
		if len(nt.Columns) > 0 {
			out.Tables = append(out.Tables, nt)
		}
	}
	out.Tables = append(out.Tables, u.Tables...)
	return dropKeeps(out)
}

func dropKeeps(r *Rules) *Rules {
	out := &Rules{Version: r.Version, ReplaceDefault: r.ReplaceDefault}
	for _, t := range r.Tables {
		nt := TableRule{Table: t.Table, Where: t.Where}
		for _, c := range t.Columns {
			if c.Action.Kind != ActKeep {
				nt.Columns = append(nt.Columns, c)
			}
		}
		if len(nt.Columns) > 0 {
			out.Tables = append(out.Tables, nt)
		}
	}
	return out
}

// Marshal writes the rules back as a rule file (ParseRules reads it back to
// the same rules).
func (r *Rules) Marshal() ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "version: %d\n", r.Version)
	if r.ReplaceDefault {
		b.WriteString("replace_default: true\n")
	}
	b.WriteString("tables:\n")
	for _, t := range r.Tables {
		tb, err := yaml.Marshal(t.Table)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "  - table: %s", tb)
		if t.Where != "" {
			wb, err := yaml.Marshal(t.Where)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&b, "    where: %s", indentYAML(wb))
		}
		b.WriteString("    columns:\n")
		for _, c := range t.Columns {
			s := string(c.Action.Kind)
			switch c.Action.Kind {
			case ActFake:
				s += ":" + c.Action.Fake
			case ActValue:
				s += ":" + c.Action.Value
			}
			vb, err := yaml.Marshal(s)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(&b, "      %s: %s", c.Column, indentYAML(vb))
		}
	}
	return b.Bytes(), nil
}

// indentYAML indents continuation lines of a marshalled scalar so it can
// follow a key.
func indentYAML(b []byte) string {
	s := strings.TrimSuffix(string(b), "\n")
	return strings.ReplaceAll(s, "\n", "\n        ") + "\n"
}
