#!/usr/bin/env bash
# The model-family ablation of README "The model family": on top of --recipe kaggle, each
# variant alone, then combinations, every row at its own learning rate and epochs (given
# in the row), scored on frames no model saw. Resumable: a row whose result exists is
# kept. Usage: docs/family.sh usgra|synth [WORK_DIR] [ROW ...]
#   usgra: trained on the 204 training frames of ../shared/data/usgra-seg (the last 20%
#          validate), scored on its 40 test frames: mean per-image Dice at each frame's
#          own size (evaluate's kaggle_dice; every test frame holds a nerve).
#   synth: 12 synthetic subjects x 60 frames, scored on 600 synthetic test frames with
#          the competition metric (kaggle_dice of the submission).
# Rows are named NAME-sSEED; results.tsv holds: row, val_dice_coef at the best epoch,
# the score, seconds of training. Runs on the CPU with --flush-denormals (late epochs
# slow several times on denormal gradients otherwise; results unchanged).
set -euo pipefail
what=${1:?usage: docs/family.sh usgra|synth [WORK_DIR] [ROW ...]}
work=${2:-family-$what}
shift $(( $# >= 2 ? 2 : 1 ))
ns=$(realpath "${NERVESEG:-target/release/nerveseg}")
data=$(realpath "${USGRA:-../shared/data/usgra-seg}")
mkdir -p "$work" && cd "$work"
results=results.tsv
run=("$ns" --flush-denormals)

case $what in
usgra)
    width=(--device cpu)
    [ -f us/imgs_train.npy ] || "${run[@]}" prepare -q --images "$data/images" --masks "$data/masks" \
        --mask-class 1 --size 512x512 --out us
    [ -f us-test/imgs_train.npy ] || "${run[@]}" prepare -q --images "$data/test/images" \
        --masks "$data/test/masks" --mask-class 1 --size 512x512 --out us-test
    train=(--images us/imgs_train.npy --masks us/imgs_mask_train.npy)
    score() { # row: the mean per-image Dice of its best checkpoint on the 40 test frames
        "${run[@]}" evaluate -q --json --device cpu --weights "$1/weights.h5" \
            --images us-test/imgs_train.npy --masks us-test/imgs_mask_train.npy \
            --validation-split 1 >"$1.json"
        python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["kaggle_dice"])' "$1.json"
    }
    ;;
synth)
    width=(--base-width 16 --device cpu)
    [ -d raw ] || "${run[@]}" synth -q --subjects 12 --per-subject 60 --test 600 --test-masks --out raw
    [ -f imgs_train.npy ] || "${run[@]}" prepare -q --raw raw --out .
    train=(--images imgs_train.npy --masks imgs_mask_train.npy)
    score() {
        "${run[@]}" predict -q --device cpu --weights "$1/weights.h5" --images imgs_test.npy \
            --out "$1.npy" --no-png
        "${run[@]}" submit -q --masks "$1.npy" --out "$1.csv"
        "${run[@]}" evaluate -q --json --submission "$1.csv" --masks raw/test_masks >"$1.json"
        python3 -c 'import json,sys; print("%.3f" % json.load(open(sys.argv[1]))["kaggle_dice"])' "$1.json"
    }
    ;;
*) echo "usage: docs/family.sh usgra|synth [WORK_DIR] [ROW ...]" >&2; exit 2 ;;
esac

kaggle=(--recipe kaggle)
# name | flags (beside --recipe kaggle and the set's width)
rows=(
    "kaggle-lr3e-5-e24|--lr 3e-5 --epochs 24"
    "kaggle-lr3e-4|--lr 3e-4 --epochs 60"
    "kaggle-lr1e-3|--lr 1e-3 --epochs 60"
    "bn|--norm batch --lr 1e-3 --epochs 60"
    "bn-lr3e-3|--norm batch --lr 3e-3 --epochs 60"
    "elu|--activation elu --lr 3e-4 --epochs 60"
    "bn-elu|--norm batch --activation elu --lr 1e-3 --epochs 60"
    "bn-image-dice|--norm batch --loss image-dice --lr 1e-3 --epochs 60"
    "bn-bce-dice|--norm batch --loss bce-dice --lr 1e-3 --epochs 60"
    "bn-drop0.1|--norm batch --dropout 0.1 --lr 1e-3 --epochs 60"
    "bn-128|--norm batch --input-size 128x128 --lr 1e-3 --epochs 60"
)

one() { # name-sSEED flags...: train, score, append a row
    local row=$1; shift
    grep -q "^$row	" $results 2>/dev/null && return
    local t0=$SECONDS
    [ -f "$row/done" ] || { "${run[@]}" train -q "${train[@]}" "${width[@]}" "${kaggle[@]}" "$@" \
        --out-dir "$row" && touch "$row/done"; }
    local secs=$((SECONDS - t0))
    local val
    val=$(python3 -c 'import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); print("%.3f" % max(float(x["val_dice_coef"]) for x in r))' "$row/history.csv")
    printf '%s\t%s\t%s\t%s\n' "$row" "$val" "$(score "$row")" "$secs" >>$results
}

# ROW arguments select rows by name (NAME or NAME-sSEED); a seed defaults to 0.
want=("$@")
[ ${#want[@]} -gt 0 ] || for r in "${rows[@]}"; do want+=("${r%%|*}"); done
for w in "${want[@]}"; do
    name=${w%-s[0-9]*}
    seed=0
    [ "$name" != "$w" ] && seed=${w##*-s}
    flags=""
    for r in "${rows[@]}"; do [ "${r%%|*}" = "$name" ] && flags=${r#*|}; done
    [ -n "$flags" ] || { echo "no row named $name" >&2; exit 2; }
    # shellcheck disable=SC2086
    one "$name-s$seed" $flags --seed "$seed"
done
column -t $results
