// Package pgerr classifies PostgreSQL errors that more than one package of the project must
// recognise alike (the checkpoint store of ack/pgstore and the sink of sink/pgsink).
package pgerr

import (
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
)

// LostCreateRace reports whether err is how PostgreSQL fails a CREATE TABLE IF NOT EXISTS
// that ran at the same time as another one creating the same table, which succeeded: IF NOT
// EXISTS is checked before the catalog rows are written, so the loser fails on one of them —
// the table's name (42P07 duplicate_table), its row type (42710 duplicate_object), or a
// unique index of the catalog (23505 unique_violation). The table is there either way.
func LostCreateRace(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "42P07", "42710", "23505":
		return true
	}
	return false
}
