package basebackup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// MessageType is the first byte of every CopyData message of a PostgreSQL
// 15+ BASE_BACKUP stream.
type MessageType byte

// Message types of the PostgreSQL 15+ base backup copy stream (protocol
// documentation, "Streaming Replication Protocol", BASE_BACKUP).
const (
	// MsgNewArchive starts an archive: archive name and tablespace path
	// (empty for the main data directory), both NUL-terminated.
	MsgNewArchive MessageType = 'n'
	// MsgManifest announces that the following MsgData messages carry the
	// backup_manifest rather than archive data.
	MsgManifest MessageType = 'm'
	// MsgData carries a piece of the current archive or of the manifest.
	MsgData MessageType = 'd'
	// MsgProgress reports the bytes sent so far (an int64, big-endian).
	MsgProgress MessageType = 'p'
)

// Message is one decoded CopyData message. Only the fields of its Type are
// set.
type Message struct {
	Type MessageType
	// ArchiveName and TablespacePath of a MsgNewArchive.
	ArchiveName    string
	TablespacePath string
	// Data of a MsgData. It aliases the decoded buffer.
	Data []byte
	// Progress of a MsgProgress.
	Progress int64
}

// ErrBadCopyMessage reports a CopyData message that does not follow the
// PostgreSQL 15+ base backup framing.
var ErrBadCopyMessage = errors.New("malformed base backup copy message")

// DecodeCopyMessage decodes one CopyData payload of a PostgreSQL 15+
// BASE_BACKUP stream. It is strict: trailing bytes, a missing terminator, a
// negative progress count or an archive name that cannot be used as part of
// an object key are errors, because the names become repository keys.
func DecodeCopyMessage(b []byte) (Message, error) {
	if len(b) == 0 {
		return Message{}, fmt.Errorf("%w: empty message", ErrBadCopyMessage)
	}
	m := Message{Type: MessageType(b[0])}
	body := b[1:]
	switch m.Type {
	case MsgData:
		m.Data = body
	case MsgManifest:
		if len(body) != 0 {
			return Message{}, fmt.Errorf("%w: %d unexpected bytes after 'm'", ErrBadCopyMessage, len(body))
		}
	case MsgProgress:
		if len(body) != 8 {
			return Message{}, fmt.Errorf("%w: progress message of %d bytes, want 8", ErrBadCopyMessage, len(body))
		}
		m.Progress = int64(binary.BigEndian.Uint64(body))
		if m.Progress < 0 {
			return Message{}, fmt.Errorf("%w: negative progress %d", ErrBadCopyMessage, m.Progress)
		}
	case MsgNewArchive:
		name, rest, ok := cutCString(body)
		if !ok {
			return Message{}, fmt.Errorf("%w: archive name is not NUL-terminated", ErrBadCopyMessage)
		}
		path, rest, ok := cutCString(rest)
		if !ok {
			return Message{}, fmt.Errorf("%w: tablespace path is not NUL-terminated", ErrBadCopyMessage)
		}
		if len(rest) != 0 {
			return Message{}, fmt.Errorf("%w: %d unexpected bytes after new-archive message", ErrBadCopyMessage, len(rest))
		}
		if err := checkArchiveName(name); err != nil {
			return Message{}, err
		}
		m.ArchiveName, m.TablespacePath = name, path
	default:
		return Message{}, fmt.Errorf("%w: unknown type %q", ErrBadCopyMessage, b[0])
	}
	return m, nil
}

func cutCString(b []byte) (s string, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return "", nil, false
	}
	return string(b[:i]), b[i+1:], true
}

// checkArchiveName accepts names that are safe as one segment of an object
// key ("base.tar", "16385.tar").
func checkArchiveName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 255 || strings.ContainsAny(name, "/\\") {
		return fmt.Errorf("%w: unusable archive name %q", ErrBadCopyMessage, name)
	}
	for _, c := range []byte(name) {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: unusable archive name %q", ErrBadCopyMessage, name)
		}
	}
	return nil
}
