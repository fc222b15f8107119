// Package event is ebpfjail's public event schema: the JSON objects that
// --log-json writes, one per line, and that --audit summarises.
//
// The schema is a contract with the tools that ingest it (Vector, Fluent
// Bit, jq scripts): fields are only ever added; a change that renames,
// removes or retypes a field raises [Version]. Every event carries "v"
// (the version), "type" and "time"; the other fields appear where they
// apply and are omitted when empty. SCHEMA.md beside this file documents
// each field.
package event
