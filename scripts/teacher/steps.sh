# Shared by the teacher run scripts: `step NAME OUTPUT CMD...` runs CMD unless OUTPUT exists,
# timing it (wall seconds, peak RSS) into $R/NAME.log, so an interrupted run resumes where it stopped.
# Source it after setting R (the run folder). STEPS=name,name,... runs only those steps (their inputs
# must exist), e.g. to add one experiment to a finished run without repeating the others.
step() {
  local name=$1 out=$2; shift 2
  if [ -n "${STEPS:-}" ] && [[ ",$STEPS," != *",$name,"* ]]; then return; fi
  if [ -e "$out" ]; then echo "skip $name ($out exists)"; return; fi
  echo "$(date -u +%FT%TZ) start $name"
  /usr/bin/time -f "$name wall %e s, peak RSS %M KB" "$@" > "$R/$name.log" 2>&1 || { tail -20 "$R/$name.log"; exit 1; }
  tail -1 "$R/$name.log"
}
