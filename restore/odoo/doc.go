// Package odoo prepares a restored copy of an Odoo database for use outside
// production: MarkRestoredCopy marks it as a copy and gives it its own
// identity (database.uuid, database.secret), Neutralize stops it from
// talking to the outside world, Anonymize replaces the personal data in it.
//
// Neutralize and Anonymize refuse to run on a database that is not marked
// as a restored copy (MarkRestoredCopy, which walvault's restore calls on
// every copy it prepares) unless forced: neutralizing production would silently stop its
// mail and scheduled actions, anonymising it would destroy its data.
//
// They work on Odoo 16, 17 and 18 (and degrade gracefully on older ones):
// every statement first checks that its table and columns exist, and the
// report says what was changed, per table and column, and what was skipped
// because the database does not have it. Each runs in one transaction: on
// any error nothing is changed.
//
// Anonymisation follows a rule set (Rules): the embedded default
// (DefaultRules, docs/ANONYMIZE.md) optionally merged with the user's own
// file. Fake values are derived from the original with a keyed HMAC whose
// key is random per run and never stored: the same original gets the same
// fake everywhere in one run (joins, duplicates and threads stay
// consistent), and nobody can map fakes back.
//
// The package logs nothing; it returns reports and errors.
package odoo
