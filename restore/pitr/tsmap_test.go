package pitr

import (
	"reflect"
	"testing"
)

func TestTablespaceMap(t *testing.T) {
	links := []tablespaceLink{
		{"16385", "/srv/ts one"},
		{"16386", "/srv/odd\\name\nwith\rbreaks"},
		{"16387", "  /leading/spaces"},
	}
	data := formatTablespaceMap(links)
	want := "16385 /srv/ts one\n16386 /srv/odd\\\\name\\\nwith\\\rbreaks\n16387   /leading/spaces\n"
	if string(data) != want {
		t.Errorf("formatTablespaceMap = %q, want %q", data, want)
	}
	got, err := parseTablespaceMap(data)
	if err != nil || !reflect.DeepEqual(got, links) {
		t.Errorf("parseTablespaceMap = %+v, %v; want %+v", got, err, links)
	}
	// CRLF line ends and blank lines are accepted, as by the server.
	got, err = parseTablespaceMap([]byte("16385 /a\r\n\n16386 /b\n"))
	if err != nil || len(got) != 2 || got[1].Path != "/b" {
		t.Errorf("CRLF: %+v, %v", got, err)
	}
	for _, bad := range []string{"16385 /a", "16385\n", "16385 \n", " /a\n", "16385 /a\\"} {
		if _, err := parseTablespaceMap([]byte(bad)); err == nil {
			t.Errorf("parseTablespaceMap(%q): no error", bad)
		}
	}
}

func FuzzTablespaceMap(f *testing.F) {
	f.Add([]byte("16385 /srv/ts\n"))
	f.Add([]byte("16386 /a\\\\b\\\nc\n16387 x\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		links, err := parseTablespaceMap(data)
		if err != nil {
			return
		}
		again, err := parseTablespaceMap(formatTablespaceMap(links))
		if err != nil || !reflect.DeepEqual(again, links) && !(len(again) == 0 && len(links) == 0) {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", data, again, err, links)
		}
	})
}
