package main

import (
	"reflect"
	"time"

	"github.com/urfave/cli/v2"
)

// settings are the values of every option of the command that runs:
// flags, environment (WALVAULT_*) and config file, applied in that order of
// precedence (loadConfigFile), decoded once into typed fields. Commands
// read them from here (settingsOf), not by name: the struct tags are the only
// place that spells a flag's name besides its definition, and a field a
// command does not define keeps its zero value.
type settings struct {
	AgeIdentityFile         string        `flag:"age-identity-file"`
	AgeRecipients           string        `flag:"age-recipients"`
	AgeRecipientsFile       string        `flag:"age-recipients-file"`
	AllowUnsignedRepository bool          `flag:"allow-unsigned-repository"`
	Anonymize               bool          `flag:"anonymize"`
	AnonymizeRules          string        `flag:"anonymize-rules"`
	ApplicationName         string        `flag:"application-name"`
	ArchiveTest             bool          `flag:"archive-test"`
	BlockRefreshDays        float64       `flag:"block-refresh-days"`
	ArchiveTimeout          time.Duration `flag:"archive-timeout"`
	As                      string        `flag:"as"`
	AtRecoveryEnd           bool          `flag:"at-recovery-end"`
	Backup                  string        `flag:"backup"`
	BackupsOnly             bool          `flag:"backups-only"`
	BaseURL                 string        `flag:"base-url"`
	Check                   bool          `flag:"check"`
	CheckTimeout            time.Duration `flag:"check-timeout"`
	Checks                  string        `flag:"checks"`
	ClearTablespaces        bool          `flag:"clear-tablespaces"`
	CompressLevel           int           `flag:"compress-level"`
	Config                  string        `flag:"config"`
	Confirm                 bool          `flag:"confirm"`
	CopyS3Credentials       bool          `flag:"copy-s3-credentials"`
	CreateSlot              bool          `flag:"create-slot"`
	DataDir                 string        `flag:"data-dir"`
	Database                string        `flag:"database"`
	DB                      string        `flag:"db"`
	DBUser                  string        `flag:"db-user"`
	ExpectWALAtLeast        string        `flag:"expect-wal-at-least"`
	Fast                    bool          `flag:"fast"`
	Filestore               string        `flag:"filestore"`
	FilestoreMargin         time.Duration `flag:"filestore-margin"`
	FilestoreSample         int           `flag:"filestore-sample"`
	Force                   bool          `flag:"force"`
	Interval                time.Duration `flag:"interval"`
	Into                    string        `flag:"into"`
	JSON                    bool          `flag:"json"`
	JUnit                   string        `flag:"junit"`
	Keep                    bool          `flag:"keep"`
	KeepFailed              bool          `flag:"keep-failed"`
	KeepLogin               []string      `flag:"keep-login"`
	KeepScratch             bool          `flag:"keep-scratch"`
	Label                   string        `flag:"label"`
	LockWait                time.Duration `flag:"lock-wait"`
	LogFormat               string        `flag:"log-format"`
	LogLevel                string        `flag:"log-level"`
	MaxBackupAge            string        `flag:"max-backup-age"`
	MaxRate                 int           `flag:"max-rate"`
	MaxSpool                string        `flag:"max-spool"`
	MaxWALAge               string        `flag:"max-wal-age"`
	MetricsAddr             string        `flag:"metrics-addr"`
	Name                    string        `flag:"name"`
	Neutralize              bool          `flag:"neutralize"`
	NoEncryption            bool          `flag:"no-encryption"`
	NoProgress              bool          `flag:"no-progress"`
	Note                    string        `flag:"note"`
	OdooConfig              string        `flag:"odoo-config"`
	OdooFilestore           string        `flag:"odoo-filestore"`
	OdooOwner               string        `flag:"odoo-owner"`
	Owner                   string        `flag:"owner"`
	PartialInterval         time.Duration `flag:"partial-interval"`
	PGBinDir                string        `flag:"pg-bindir"`
	PGOption                []string      `flag:"pg-option"`
	PGURL                   string        `flag:"pg-url"`
	PGData                  string        `flag:"pgdata"`
	Prefetch                int           `flag:"prefetch"`
	PrefetchDir             string        `flag:"prefetch-dir"`
	PrintRules              bool          `flag:"print-rules"`
	ProgressInterval        time.Duration `flag:"progress-interval"`
	PushAhead               int           `flag:"push-ahead"`
	RandomPoint             bool          `flag:"random-point"`
	RecoveryDir             string        `flag:"recovery-dir"`
	Release                 bool          `flag:"release"`
	Repo                    string        `flag:"repo"`
	RetainDays              float64       `flag:"retain-days"`
	RetainFull              int           `flag:"retain-full"`
	Rules                   string        `flag:"rules"`
	S3AccessKey             string        `flag:"s3-access-key"`
	S3Endpoint              string        `flag:"s3-endpoint"`
	S3ObjectLockDays        int           `flag:"s3-object-lock-days"`
	S3ObjectLockMode        string        `flag:"s3-object-lock-mode"`
	S3PathStyle             bool          `flag:"s3-path-style"`
	S3Region                string        `flag:"s3-region"`
	S3SecretKey             string        `flag:"s3-secret-key"`
	S3SessionToken          string        `flag:"s3-session-token"`
	Scratch                 string        `flag:"scratch"`
	Seed                    uint64        `flag:"seed"`
	Since                   string        `flag:"since"`
	Slot                    string        `flag:"slot"`
	SlotWarn                string        `flag:"slot-warn"`
	Socket                  string        `flag:"socket"`
	Spool                   string        `flag:"spool"`
	StateDir                string        `flag:"state-dir"`
	Synchronous             bool          `flag:"synchronous"`
	TablespaceMap           []string      `flag:"tablespace-map"`
	TargetAction            string        `flag:"target-action"`
	TargetImmediate         bool          `flag:"target-immediate"`
	TargetInclusive         string        `flag:"target-inclusive"`
	TargetLSN               string        `flag:"target-lsn"`
	TargetName              string        `flag:"target-name"`
	TargetTime              string        `flag:"target-time"`
	TargetTimeline          string        `flag:"target-timeline"`
	TargetXID               string        `flag:"target-xid"`
	Timeout                 time.Duration `flag:"timeout"`
	WALOnly                 bool          `flag:"wal-only"`
	WALServer               string        `flag:"wal-server"`
	WALTimeout              time.Duration `flag:"wal-timeout"`
	Workers                 int           `flag:"workers"`
	WriterKeyFile           string        `flag:"writer-key-file"`
}

// settingsKey is where the decoded settings wait in App.Metadata.
const settingsKey = "walvault.settings"

// settingsOf returns the settings of the command c runs, decoding them when
// Before has not (a context built by hand in a test).
func settingsOf(c *cli.Context) *settings {
	if c.App != nil {
		if s, ok := c.App.Metadata[settingsKey].(*settings); ok {
			return s
		}
	}
	return decodeSettings(c)
}

// storeSettings decodes c's settings once, after the config file was
// applied, for settingsOf.
func storeSettings(c *cli.Context) {
	if c.App == nil {
		return
	}
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	c.App.Metadata[settingsKey] = decodeSettings(c)
}

// decodeSettings reads every option c's command defines into a settings
// value.
func decodeSettings(c *cli.Context) *settings {
	s := &settings{}
	v := reflect.ValueOf(s).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name := t.Field(i).Tag.Get("flag")
		if c.Value(name) == nil {
			continue // not an option of this command
		}
		f := v.Field(i)
		switch f.Interface().(type) {
		case string:
			f.SetString(c.String(name))
		case bool:
			f.SetBool(c.Bool(name))
		case int:
			f.SetInt(int64(c.Int(name)))
		case time.Duration:
			f.SetInt(int64(c.Duration(name)))
		case float64:
			f.SetFloat(c.Float64(name))
		case uint64:
			f.SetUint(c.Uint64(name))
		case []string:
			f.Set(reflect.ValueOf(c.StringSlice(name)))
		}
	}
	return s
}
