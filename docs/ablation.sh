#!/usr/bin/env bash
# The ablation of README "Beyond the tutorial": every row trains at the same budget per
# model and is scored on frames no model saw. Resumable: a row whose result exists is
# kept. Usage: [ROWS=cv|single] docs/ablation.sh usgra|synth [WORK_DIR]
# (CPU: on 2 cores about 7 s an epoch for usgra, so 5 folds x 60 epochs take 37 min).
# The rows build up: plain; + --augment; + the LR schedule (--recipe kaggle); + TTA;
# the 5-fold ensemble of the recipe (cv --folds 5, predict --ensemble); + TTA.
#   usgra: the 204 training frames of ../shared/data/usgra-seg (frame-wise folds: it
#          names no patients), scored on its 40 test frames (mean per-image Dice).
#   synth: 12 synthetic subjects x 60 frames (patient-wise folds), scored on 600
#          synthetic test frames with the competition metric (kaggle_dice).
set -euo pipefail
what=${1:?usage: docs/ablation.sh usgra|synth [WORK_DIR]}
work=${2:-ablation-$what}
ns=$(realpath "${NERVESEG:-target/release/nerveseg}")
data=$(realpath "${USGRA:-../shared/data/usgra-seg}")
mkdir -p "$work" && cd "$work"
results=results.tsv

case $what in
usgra)
    budget=(--lr 3e-4 --epochs 60 --device cpu)
    [ -f us/imgs_train.npy ] || "$ns" prepare -q --images "$data/images" --masks "$data/masks" \
        --mask-class 1 --size 512x512 --out us
    [ -f us-test/imgs_train.npy ] || "$ns" prepare -q --images "$data/test/images" \
        --masks "$data/test/masks" --mask-class 1 --size 512x512 --out us-test
    train=(--images us/imgs_train.npy --masks us/imgs_mask_train.npy)
    score() { # row-name, model flags...
        local row=$1; shift
        grep -q "^$row	" $results 2>/dev/null && return
        "$ns" evaluate -q --json --device cpu "$@" --images us-test/imgs_train.npy \
            --masks us-test/imgs_mask_train.npy --validation-split 1 >"$row.json"
        printf '%s\t%s\n' "$row" "$(python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print("%.3f\t%.3f" % (v["dice_coef"], v["kaggle_dice"]))' "$row.json")" >>$results
    }
    ;;
synth)
    budget=(--lr 3e-5 --epochs 24 --base-width 16 --device cpu)
    [ -d raw ] || "$ns" synth -q --subjects 12 --per-subject 60 --test 600 --test-masks --out raw
    [ -f imgs_train.npy ] || "$ns" prepare -q --raw raw --out .
    train=(--images imgs_train.npy --masks imgs_mask_train.npy)
    score() {
        local row=$1; shift
        grep -q "^$row	" $results 2>/dev/null && return
        "$ns" predict -q --device cpu "$@" --images imgs_test.npy --out "$row.npy" --no-png
        "$ns" submit -q --masks "$row.npy" --out "$row.csv"
        "$ns" evaluate -q --json --submission "$row.csv" --masks raw/test_masks >"$row.json"
        printf '%s\t-\t%s\n' "$row" "$(python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); print("%.3f" % v["kaggle_dice"])' "$row.json")" >>$results
    }
    ;;
*) echo "usage: docs/ablation.sh usgra|synth [WORK_DIR]" >&2; exit 2 ;;
esac

recipe=(--recipe kaggle)   # = --augment --reduce-lr-on-plateau --lr-factor 0.5 --lr-patience 5
one() { # dir, flags...: one model on the last 20%
    local dir=$1; shift
    [ -f "$dir/weights.h5" ] && [ -f "$dir/done" ] && return
    "$ns" train -q "${train[@]}" "${budget[@]}" "$@" --out-dir "$dir" && touch "$dir/done"
}
if [ "${ROWS:-all}" != single ]; then
    "$ns" cv -q "${train[@]}" "${budget[@]}" "${recipe[@]}" --folds 5 --out-dir cv-recipe >/dev/null
    score cv5-recipe --ensemble cv-recipe
    score cv5-recipe+tta --ensemble cv-recipe --tta
fi
if [ "${ROWS:-all}" != cv ]; then
    one plain
    score plain --weights plain/weights.h5
    score plain+tta --weights plain/weights.h5 --tta
    one aug --augment
    score aug --weights aug/weights.h5
    one recipe "${recipe[@]}"
    score recipe --weights recipe/weights.h5
    score recipe+tta --weights recipe/weights.h5 --tta
fi
column -t $results
