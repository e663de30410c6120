#!/usr/bin/env bash
# Fails when the repository tracks a build output: an executable binary
# (ELF, Mach-O, PE or wasm, whatever its mode), a file with an execute bit
# that is not a script (no #! line), or a file over 1 MiB outside a
# testdata/ folder (real samples may be large; nothing else should be).
# Run from the repository's top (make lint does).
set -euo pipefail

max=$((1024 * 1024))
bad=0
while IFS= read -r -d '' entry; do
  mode=${entry%% *}
  path=${entry#*$'\t'}
  [ -f "$path" ] || continue # deleted in the work tree, not yet committed
  magic=$(head -c 4 "$path" | od -An -tx1 | tr -d ' \n')
  case "$magic" in
    7f454c46 | cffaedfe | cefaedfe | feedfacf | feedface | 0061736d | 4d5a*)
      echo "check-tracked: $path is an executable binary (magic $magic): build outputs are not tracked" >&2
      bad=1
      continue
      ;;
  esac
  if [ "$mode" = 100755 ] && [ "$(head -c 2 "$path")" != '#!' ]; then
    echo "check-tracked: $path has an execute bit but is not a script" >&2
    bad=1
  fi
  size=$(stat -c %s "$path")
  if [ "$size" -gt "$max" ]; then
    case "/$path" in
      */testdata/*) ;;
      *)
        echo "check-tracked: $path is $size bytes; files over 1 MiB belong in a testdata/ folder, or nowhere" >&2
        bad=1
        ;;
    esac
  fi
done < <(git ls-files -s -z)
exit "$bad"
