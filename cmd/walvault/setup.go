package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
	"github.com/urfave/cli/v2"

	"github.com/walvault/walvault/crypto"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/s3"
	"github.com/walvault/walvault/storage/storeurl"
)

// access says what a command does with the repository, and so which keys
// it needs: writers need recipients, readers an identity.
type access int

const (
	accessRead access = 1 << iota
	accessWrite
	// accessReadIfConfigured loads the identity when one is configured and
	// goes without it otherwise (or when it cannot be loaded): for a writer
	// that reads a little when it can (backup dates its end from the
	// server's backup history file).
	accessReadIfConfigured
)

func openStore(ctx context.Context, c *cli.Context) (storage.Store, error) {
	url := settingsOf(c).Repo
	if url == "" {
		return nil, configf("no repository: set --repo, WALVAULT_REPO or `repo` in the config file (file:///var/lib/walvault or s3://bucket/prefix)")
	}
	lock, err := objectLock(c)
	if err != nil {
		return nil, err
	}
	st, err := storeurl.Open(ctx, url, storeurl.S3Config{
		ObjectLock:   lock,
		Endpoint:     settingsOf(c).S3Endpoint,
		Region:       settingsOf(c).S3Region,
		PathStyle:    settingsOf(c).S3PathStyle,
		AccessKey:    settingsOf(c).S3AccessKey,
		SecretKey:    settingsOf(c).S3SecretKey,
		SessionToken: settingsOf(c).S3SessionToken,
	})
	if err != nil {
		return nil, &configError{err: err}
	}
	return st, nil
}

// objectLock reads --s3-object-lock-days and --s3-object-lock-mode.
func objectLock(c *cli.Context) (s3.ObjectLock, error) {
	days := settingsOf(c).S3ObjectLockDays
	if days == 0 {
		return s3.ObjectLock{}, nil
	}
	if days < 0 || days > 36500 {
		return s3.ObjectLock{}, configf("--s3-object-lock-days %d: give a number of days from 1 to 36500, or 0 for no object lock", days)
	}
	mode := strings.ToUpper(settingsOf(c).S3ObjectLockMode)
	if mode != "GOVERNANCE" && mode != "COMPLIANCE" {
		return s3.ObjectLock{}, configf("--s3-object-lock-mode %q: use governance or compliance", settingsOf(c).S3ObjectLockMode)
	}
	return s3.ObjectLock{Mode: mode, Period: time.Duration(days) * 24 * time.Hour}, nil
}

// keyOptions loads the keys the access needs. An unencrypted repository
// needs none.
func keyOptions(c *cli.Context, cfg repo.Config, acc access) (repo.Options, error) {
	var opts repo.Options
	level := settingsOf(c).CompressLevel
	if level < 1 || level > 4 {
		return opts, usagef("--compress-level %d: use 1 (fastest) to 4 (best)", level)
	}
	opts.Level = zstd.EncoderLevel(level)
	if err := trustOptions(c, cfg, acc, &opts); err != nil {
		return opts, err
	}
	if !cfg.Encrypted() {
		// walvault.json is plain JSON: anyone who can write to the store
		// can turn "age" into "none". A host configured with keys takes
		// that for tampering (or the wrong repository) rather than write
		// plaintext, or read planted plaintext as WAL.
		if acc != 0 {
			for _, name := range []string{"age-recipients", "age-recipients-file", "age-identity-file"} {
				if c.String(name) != "" {
					return opts, configf("%s says the repository is not encrypted, but this host is configured with %s: refusing to write or read it unencrypted. "+
						"If %s was changed by someone else, put it back (\"encryption\": \"age\"); if the repository really was created with --no-encryption, remove the age settings from this host's configuration",
						repo.ConfigKey, name, repo.ConfigKey)
				}
			}
		}
		return opts, nil
	}
	if acc&accessWrite != 0 {
		rs, err := loadRecipients(c)
		if err != nil {
			return opts, err
		}
		opts.Recipients = rs
	}
	if acc&accessRead != 0 {
		path := settingsOf(c).AgeIdentityFile
		if path == "" {
			return opts, configf("reading an encrypted repository needs the age identity: set --age-identity-file or WALVAULT_AGE_IDENTITY_FILE")
		}
		ids, err := crypto.LoadIdentities(path)
		if err != nil {
			return opts, &configError{err: err}
		}
		opts.Identities = ids
		// Not from restore_command's wal-fetch and its prefetchers: once
		// per segment in the server's log helps nobody, and restore has
		// said it already.
		if name := c.Command.Name; name != "wal-fetch" && name != "wal-prefetch" {
			for _, w := range crypto.IdentityFileWarnings(path) {
				fmt.Fprintf(c.App.ErrWriter, "walvault %s: warning: %s\n", name, w)
			}
		}
	} else if acc&accessReadIfConfigured != 0 {
		if path := settingsOf(c).AgeIdentityFile; path != "" {
			if ids, err := crypto.LoadIdentities(path); err == nil {
				opts.Identities = ids
			}
		}
	}
	return opts, nil
}

// trustOptions loads what format 2 needs: the writer key that signs (and
// whose root the host trusts) and the roots of the identity file. A
// format-2 repository refuses to be written without a writer key.
func trustOptions(c *cli.Context, cfg repo.Config, acc access, opts *repo.Options) error {
	s := settingsOf(c)
	if p := s.WriterKeyFile; p != "" {
		w, err := crypto.LoadWriterKey(p)
		switch {
		case err == nil:
			opts.Writer = w
		case acc&accessWrite != 0:
			return &configError{err: err}
		}
		// A reader does without: a shared configuration names the
		// archiving host's key, which a restore host need not have.
	}
	if p := s.AgeIdentityFile; p != "" && acc&(accessRead|accessReadIfConfigured) != 0 {
		roots, err := crypto.LoadTrustedRoots(p)
		if err != nil && acc&accessRead != 0 {
			return &configError{err: err}
		}
		opts.TrustedRoots = roots
		// The roots' secrets, when the identity file holds them, give the
		// content keys block ids are made with (restore --delta, verify),
		// the repository's root's first.
		if keys, err := crypto.LoadRoots(p); err == nil {
			for _, k := range keys {
				if k.Public().String() == cfg.Root {
					opts.ContentKeys = append([][32]byte{k.ContentKey()}, opts.ContentKeys...)
				} else {
					opts.ContentKeys = append(opts.ContentKeys, k.ContentKey())
				}
			}
		}
	}
	opts.AllowUnsigned = s.AllowUnsignedRepository
	if cfg.Signed() && acc&accessWrite != 0 && opts.Writer == nil {
		return configf("%s is a format-2 repository, whose objects are signed: this host needs a writer key to write to it (walvault writer issue …, then --writer-key-file or WALVAULT_WRITER_KEY_FILE)", settingsOf(c).Repo)
	}
	return nil
}

func loadRecipients(c *cli.Context) ([]age.Recipient, error) {
	var out []age.Recipient
	if s := settingsOf(c).AgeRecipients; s != "" {
		rs, err := crypto.ParseRecipients(s)
		if err != nil {
			return nil, &configError{err: fmt.Errorf("--age-recipients: %w", err)}
		}
		out = append(out, rs...)
	}
	if p := settingsOf(c).AgeRecipientsFile; p != "" {
		rs, err := crypto.ReadRecipientsFile(p)
		if err != nil {
			return nil, &configError{err: fmt.Errorf("--age-recipients-file: %w", err)}
		}
		out = append(out, rs...)
	}
	if len(out) == 0 {
		// A writer key file carries the recipients it was issued with.
		if p := settingsOf(c).WriterKeyFile; p != "" {
			if w, err := crypto.LoadWriterKey(p); err == nil {
				for _, r := range w.Recipients {
					rs, err := crypto.ParseRecipients(r)
					if err != nil {
						return nil, &configError{err: fmt.Errorf("writer key %s: %w", p, err)}
					}
					out = append(out, rs...)
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, configf("writing to an encrypted repository needs age recipients (public keys): set --age-recipients, WALVAULT_AGE_RECIPIENTS or WALVAULT_AGE_RECIPIENTS_FILE (walvault keygen prints one)")
	}
	return out, nil
}

// openRepo opens an existing repository with the keys acc needs.
func openRepo(ctx context.Context, c *cli.Context, acc access) (*repo.Repository, error) {
	st, err := openStore(ctx, c)
	if err != nil {
		return nil, err
	}
	cfg, err := repo.ReadConfig(ctx, st)
	if err != nil {
		return nil, err
	}
	opts, err := keyOptions(c, cfg, acc)
	if err != nil {
		return nil, err
	}
	return repo.OpenWithConfig(st, cfg, opts)
}
