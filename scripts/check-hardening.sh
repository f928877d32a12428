#!/bin/sh
# Check that built binaries carry the hardening the Makefile asks for, so that
# it cannot silently drop: PIE (ELF type DYN), RELRO and BIND_NOW (full
# RELRO), a stack protector (__stack_chk_fail), every translation unit of
# ours compiled with -fstack-protector-strong -fstack-clash-protection
# -fcf-protection -fPIE (from .GCC.command.line, which -frecord-gcc-switches
# keeps), and FORTIFY in our code: calls to __*_chk functions made from
# glibc's inline fortify wrappers (bits/*.h) according to the debug line
# info, so that the __*_chk calls inside the static jansson and libseccomp
# archives (Debian builds them fortified) do not count. --static: the binary
# must also have no program interpreter and no shared library. An ASan build
# (__asan_init) is checked without FORTIFY (the two clash) and without
# --static.
#
# usage: scripts/check-hardening.sh [--static] BINARY...
set -u
static=0
fail=0
bad() { echo "check-hardening: $1: $2" >&2; fail=1; }

for arg in "$@"; do
	case "$arg" in
	--static) static=1; continue ;;
	esac
	b=$arg
	if [ ! -f "$b" ]; then bad "$b" "no such file"; continue; fi
	hdr=$(readelf -hW "$b") || { bad "$b" "not an ELF file"; continue; }
	phdrs=$(readelf -lW "$b")
	dyn=$(readelf -dW "$b")
	syms=$(readelf -sW "$b")
	switches=$(readelf -p .GCC.command.line "$b" 2>/dev/null | grep -o 'GNU C[^]]*')
	asan=0
	echo "$syms" | grep -q ' __asan_init' && asan=1

	echo "$hdr" | grep -Eq 'Type:[[:space:]]+DYN' || bad "$b" "not a PIE (ELF type is not DYN)"
	echo "$phdrs" | grep -q 'GNU_RELRO' || bad "$b" "no GNU_RELRO segment (-z relro)"
	echo "$dyn" | grep -Eq '\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW' || bad "$b" "no BIND_NOW (-z now)"
	echo "$syms" | grep -q '__stack_chk_fail' || bad "$b" "no __stack_chk_fail (stack protector)"
	if [ $asan -eq 0 ]; then
		if ! readelf -SW "$b" | grep -q '\.debug_line'; then
			bad "$b" "no debug line info: cannot tell whether _FORTIFY_SOURCE was used (build with -g)"
		else
			n=$(objdump -d -l --no-show-raw-insn "$b" | awk '
				/^\/.*:[0-9]+/ { src = $1 }
				/^[0-9a-f]+ <.*>:$/ { src = "" }
				/call.*<_+[a-z0-9_]+_chk(@plt)?>/ && src ~ /\/bits\// { n++ }
				END { print n + 0 }')
			[ "$n" -gt 0 ] || bad "$b" "no __*_chk call from a fortify wrapper (_FORTIFY_SOURCE)"
		fi
	fi
	if [ -z "$switches" ]; then
		bad "$b" "no .GCC.command.line (built without -frecord-gcc-switches?)"
	else
		echo "$switches" | while IFS= read -r line; do
			for f in -fstack-protector-strong -fstack-clash-protection -fcf-protection -fPIE; do
				case " $line " in
				*" $f "* | *" $f="*) ;;
				*) echo "check-hardening: $b: a unit was compiled without $f: $line" >&2; exit 1 ;;
				esac
			done
		done || fail=1
	fi
	if [ $static -eq 1 ] && [ $asan -eq 0 ]; then
		echo "$phdrs" | grep -q 'INTERP' && bad "$b" "has a program interpreter: not static"
		echo "$dyn" | grep -q '(NEEDED)' && bad "$b" "needs shared libraries: not static"
	fi
done
[ $fail -eq 0 ] && echo "check-hardening: $(echo "$@" | sed 's/--static //g'): ok"
exit $fail
