package odoo

import (
	"errors"
	"regexp"
	"testing"
)

func TestNormalizeBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://staging.example.com":       "https://staging.example.com",
		"https://staging.example.com/":      "https://staging.example.com",
		" http://10.0.0.5:8069 ":            "http://10.0.0.5:8069",
		"https://example.com/odoo-staging/": "https://example.com/odoo-staging",
	} {
		if got, err := NormalizeBaseURL(in); err != nil || got != want {
			t.Errorf("NormalizeBaseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "staging.example.com", "ftp://staging.example.com", "https://", "https://u:p@staging.example.com",
		"https://staging.example.com/?db=x", "https://staging.example.com/#x", "mailto:a@b.c", "http:staging"} {
		if got, err := NormalizeBaseURL(in); !errors.Is(err, ErrBaseURL) {
			t.Errorf("NormalizeBaseURL(%q) = %q, %v; want ErrBaseURL", in, got, err)
		}
	}
}

func TestNewUUID4(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		u, err := newUUID4()
		if err != nil || !re.MatchString(u) || seen[u] {
			t.Fatalf("newUUID4() = %q, %v", u, err)
		}
		seen[u] = true
	}
}
