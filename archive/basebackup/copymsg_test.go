package basebackup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// encode is the inverse of DecodeCopyMessage.
func (m Message) encode() []byte {
	b := []byte{byte(m.Type)}
	switch m.Type {
	case MsgNewArchive:
		b = append(b, m.ArchiveName...)
		b = append(b, 0)
		b = append(b, m.TablespacePath...)
		b = append(b, 0)
	case MsgData:
		b = append(b, m.Data...)
	case MsgProgress:
		b = binary.BigEndian.AppendUint64(b, uint64(m.Progress))
	}
	return b
}

func TestDecodeCopyMessage(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want Message
		bad  bool
	}{
		{name: "new base", in: []byte("nbase.tar\x00\x00"), want: Message{Type: MsgNewArchive, ArchiveName: "base.tar"}},
		{name: "new tablespace", in: []byte("n16385.tar\x00/srv/ts1\x00"), want: Message{Type: MsgNewArchive, ArchiveName: "16385.tar", TablespacePath: "/srv/ts1"}},
		{name: "data", in: []byte("dabc\x00def"), want: Message{Type: MsgData, Data: []byte("abc\x00def")}},
		{name: "empty data", in: []byte("d"), want: Message{Type: MsgData, Data: []byte{}}},
		{name: "progress", in: []byte("p\x00\x00\x00\x00\x00\x01\x00\x00"), want: Message{Type: MsgProgress, Progress: 65536}},
		{name: "manifest", in: []byte("m"), want: Message{Type: MsgManifest}},

		{name: "empty", in: nil, bad: true},
		{name: "unknown type", in: []byte("x123"), bad: true},
		{name: "manifest with payload", in: []byte("mX"), bad: true},
		{name: "short progress", in: []byte("p\x00\x01"), bad: true},
		{name: "long progress", in: []byte("p\x00\x00\x00\x00\x00\x00\x00\x01\x00"), bad: true},
		{name: "negative progress", in: []byte("p\xff\xff\xff\xff\xff\xff\xff\xff"), bad: true},
		{name: "name not terminated", in: []byte("nbase.tar"), bad: true},
		{name: "path not terminated", in: []byte("nbase.tar\x00/srv"), bad: true},
		{name: "trailing bytes", in: []byte("nbase.tar\x00\x00x"), bad: true},
		{name: "empty name", in: []byte("n\x00\x00"), bad: true},
		{name: "dot dot", in: []byte("n..\x00\x00"), bad: true},
		{name: "slash", in: []byte("na/b.tar\x00\x00"), bad: true},
		{name: "backslash", in: []byte("na\\b.tar\x00\x00"), bad: true},
		{name: "control char", in: []byte("na\nb.tar\x00\x00"), bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeCopyMessage(tt.in)
			if tt.bad {
				if !errors.Is(err, ErrBadCopyMessage) {
					t.Fatalf("got %+v, %v; want ErrBadCopyMessage", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Type != tt.want.Type || got.ArchiveName != tt.want.ArchiveName || got.TablespacePath != tt.want.TablespacePath ||
				got.Progress != tt.want.Progress || !bytes.Equal(got.Data, tt.want.Data) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzDecodeCopyMessage(f *testing.F) {
	for _, s := range []string{"nbase.tar\x00\x00", "n16385.tar\x00/srv/ts\x00", "dxyz", "m", "p\x00\x00\x00\x00\x00\x00\x10\x00", "", "q"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeCopyMessage(b)
		if err != nil {
			if !errors.Is(err, ErrBadCopyMessage) {
				t.Fatalf("error not wrapping ErrBadCopyMessage: %v", err)
			}
			return
		}
		// Whatever decodes encodes back to the same bytes, and names are
		// usable as key segments.
		if enc := m.encode(); !bytes.Equal(enc, b) {
			t.Fatalf("round trip: %q -> %+v -> %q", b, m, enc)
		}
		if m.Type == MsgNewArchive && checkArchiveName(m.ArchiveName) != nil {
			t.Fatalf("accepted name %q", m.ArchiveName)
		}
	})
}
