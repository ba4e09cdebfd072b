package repo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/walvault/walvault/storage"
)

// notesDir is the folder of a backup's notes: backups/<id>/notes/.
const notesDir = "notes/"

// BackupNote marks a backup to keep (or releases it) and/or annotates it.
// Notes are add-only objects beside the manifest, never a rewrite of it,
// so they work on buckets where objects cannot be changed (Object Lock).
// The newest note that sets Keep decides whether the backup is kept.
type BackupNote struct {
	Time time.Time `json:"time"`
	Actor
	// Keep, when set, marks the backup to keep (true) or releases the
	// mark (false). Retention never removes a kept backup.
	Keep *bool `json:"keep,omitempty"`
	// Note is free text ("before the v17 upgrade").
	Note string `json:"note,omitempty"`
}

// BackupNoteKey is the key of a note written at t.
func BackupNoteKey(id string, t time.Time) string {
	return BackupFolder(id) + notesDir + t.UTC().Format(auditTimeFormat) + "-" + randomHex(4)
}

// IsBackupNoteKey reports whether key is a note of backup id.
func IsBackupNoteKey(id, key string) bool {
	return strings.HasPrefix(key, BackupFolder(id)+notesDir)
}

// AddBackupNote stores a note for backup id. The backup need not be
// complete yet: backup --keep writes its note before the manifest, so the
// backup is never listed without it.
func (r *Repository) AddBackupNote(ctx context.Context, id string, n BackupNote) error {
	if !ValidBackupID(id) {
		return fmt.Errorf("backup id %q is not of the form 20060102T150405Z", id)
	}
	if n.Time.IsZero() {
		n.Time = time.Now()
	}
	n.Time = n.Time.UTC()
	data, err := json.Marshal(n)
	if err != nil {
		return err
	}
	if _, err := r.Put(ctx, BackupNoteKey(id, n.Time), data, storage.PutOptions{IfAbsent: true}); err != nil {
		return fmt.Errorf("note on backup %s: %w", id, err)
	}
	return nil
}

// BackupMarks is what a backup's notes say, folded.
type BackupMarks struct {
	Keep  bool         `json:"keep"`
	Notes []BackupNote `json:"notes,omitempty"`
}

// AllBackupMarks reads the notes of every backup, keyed by backup id.
// Backups without notes are absent from the map.
func (r *Repository) AllBackupMarks(ctx context.Context) (map[string]BackupMarks, error) {
	byID := make(map[string][]string)
	err := r.store.List(ctx, BackupPrefix, func(oi storage.ObjectInfo) error {
		if id, kind := parseBackupKey(oi.Key); kind == BackupNoteObject {
			byID[id] = append(byID[id], oi.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list backup notes: %w", err)
	}
	out := make(map[string]BackupMarks, len(byID))
	for id, keys := range byID {
		var notes []BackupNote
		for _, k := range keys {
			data, _, err := r.Get(ctx, k)
			if err != nil {
				return nil, fmt.Errorf("read note of backup %s: %w", id, err)
			}
			var n BackupNote
			if err := json.Unmarshal(data, &n); err != nil {
				return nil, fmt.Errorf("%w: note %s: %v", ErrIntegrity, k, err)
			}
			notes = append(notes, n)
		}
		out[id] = FoldNotes(notes)
	}
	return out, nil
}

// FoldNotes orders notes by time and applies their keep marks.
func FoldNotes(notes []BackupNote) BackupMarks {
	sort.SliceStable(notes, func(i, j int) bool { return notes[i].Time.Before(notes[j].Time) })
	var m BackupMarks
	for _, n := range notes {
		if n.Keep != nil {
			m.Keep = *n.Keep
		}
	}
	m.Notes = notes
	return m
}

// ErrNoSuchBackup: a note names a backup the repository does not hold.
var ErrNoSuchBackup = errors.New("no such backup")

// Annotate adds note n to the complete backup id (a keep mark, its release,
// or an annotation) and records it in the audit trail under command. It
// returns the audit action ("marked backup … to keep").
func (r *Repository) Annotate(ctx context.Context, id string, n BackupNote, command string, o ChangeOptions) (string, error) {
	ids, err := r.BackupIDs(ctx)
	if err != nil {
		return "", err
	}
	found := false
	for _, x := range ids {
		found = found || x == id
	}
	if !found {
		return "", fmt.Errorf("%w: %s in %s", ErrNoSuchBackup, id, r)
	}
	if n.Actor == (Actor{}) {
		o.defaults()
		n.Actor = o.Actor
	}
	if err := r.AddBackupNote(ctx, id, n); err != nil {
		return "", err
	}
	action := "annotated backup " + id
	switch {
	case n.Keep != nil && *n.Keep:
		action = "marked backup " + id + " to keep"
	case n.Keep != nil:
		action = "released the keep mark of backup " + id
	}
	var details []string
	if n.Note != "" {
		details = []string{"note: " + n.Note}
	}
	r.Record(ctx, command, Audit{Action: action, Details: details}, o)
	return action, nil
}
