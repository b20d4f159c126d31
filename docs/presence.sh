#!/usr/bin/env bash
# The table of README "Nerve presence": synthetic data with its default label noise (3%),
# every row at the same budget, scored with the competition metric on synthetic test
# frames no model saw. Each row is scored with the tutorial's rule and with the rule
# `evaluate --sweep` picks on the row's own validation split (threshold, min size and
# presence gate). Resumable. Usage: docs/presence.sh [WORK_DIR]   (CPU, ~45 min on 2 cores)
set -euo pipefail
work=${1:-presence-rows}
bin=$(realpath "${NERVESEG:-target/release/nerveseg}")
# Denormal gradients slow late CPU epochs 4x; flushing them changes no figure here.
ns() { "$bin" --flush-denormals "$@"; }
mkdir -p "$work" && cd "$work"
budget=(--lr 3e-5 --epochs 24 --base-width 16 --device cpu)
results=results.tsv
[ -d raw ] || ns synth -q --subjects 12 --per-subject 60 --test 600 --test-masks --out raw
[ -f imgs_train.npy ] || ns prepare -q --raw raw --out .
[ -f cleaned/imgs_train.npy ] || ns clean --noise raw/label_noise.csv --drop --out cleaned | tail -3

row() { # name, arrays dir, train flags...
    local name=$1 dir=$2; shift 2
    grep -q "^$name	" $results 2>/dev/null && return
    [ -f "$name/done" ] || { ns train -q --images "$dir/imgs_train.npy" --masks "$dir/imgs_mask_train.npy" \
        "${budget[@]}" "$@" --out-dir "$name" && touch "$name/done"; }
    ns predict -q --device cpu --weights "$name/weights.h5" --out "$name/maps.npy" --no-png
    flags=$(ns evaluate --json --device cpu --weights "$name/weights.h5" --images "$dir/imgs_train.npy" \
        --masks "$dir/imgs_mask_train.npy" --sweep | python3 -c 'import json,sys; print(json.load(sys.stdin)["sweep"]["best"]["flags"])')
    local scores=()
    for rule in "" "$flags"; do
        # shellcheck disable=SC2086
        ns submit -q --masks "$name/maps.npy" --out "$name/sub.csv" $rule
        scores+=("$(ns evaluate --json --submission "$name/sub.csv" --masks raw/test_masks |
            python3 -c 'import json,sys; v=json.load(sys.stdin); print("%.4f" % v["kaggle_dice"])')")
    done
    printf '%s\t%s\t%s\t%s\n' "$name" "${scores[0]}" "${scores[1]}" "$flags" >>$results
}
# The rows: without and with cleaning, the head at weight 1 and at 0.1, then cleaning
# with the recipe of the ablation above (augmentation, rate halved on a plateau).
# ROWS=new skips the four rows measured first (README: before --flush-denormals).
if [ "${ROWS:-all}" = all ]; then
    row baseline .
    row cleaned cleaned
    row head . --presence-head
    row cleaned+head cleaned --presence-head
fi
row head-w0.1 . --presence-head --presence-weight 0.1
row recipe-cleaned cleaned --recipe kaggle
# README takes this row from the ablation (docs/ablation.sh synth: the same data and budget).
[ "${ROWS:-all}" = all ] && row recipe-baseline . --recipe kaggle
column -t -s '	' $results
