// Package helptopics owns the text of 'ebpfjail help TOPIC': one embedded
// file per topic in topics/ (NAME.txt, its first line a one-line summary),
// so a feature adds its topic by adding a file, and cmd/ebpfjail only
// dispatches.
package helptopics
