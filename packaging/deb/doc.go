// Package deb holds the test of the Debian package that build.sh, beside
// it, makes ("make deb"): its files and their modes, its control files,
// its unit, its man pages, and an install and purge by dpkg into a
// throwaway root.
package deb
