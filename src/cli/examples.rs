//! The examples that end each subcommand's `--help`: the commands a user types most.

pub const SYNTH: &str = "\
Examples:
  nerveseg synth --out raw                                   the full synthetic set, Kaggle layout
  nerveseg synth --subjects 4 --per-subject 20 --test 40 --test-masks --out raw";

pub const PREPARE: &str = "\
Examples:
  nerveseg prepare --raw raw --out .                         Kaggle's train/ and test/ TIFFs
  nerveseg prepare --images scans/images --masks scans/masks --out data
  nerveseg prepare --images us/images --masks us/masks --mask-class 1 --size 512x512 --out us";

pub const CLEAN: &str = "\
Examples:
  nerveseg clean                                              list near-duplicates whose masks disagree
  nerveseg clean --drop --out cleaned                         and write the arrays without them";

pub const TRAIN: &str = "\
Examples:
  nerveseg train                                  the tutorial's run, exactly
  nerveseg train --recipe kaggle --lr 3e-4        augmentation and a schedule, the tutorial's network
  nerveseg train --recipe modern                  BatchNorm, Adam at 1e-3, 60 epochs
  nerveseg train --recipe modern --loss image-dice  when every frame holds a nerve
  nerveseg train --init-weights weights.h5 --epochs 5 --out-dir tuned   fine-tune the original Keras weights
  nerveseg train --resume --epochs 40             continue the run saved in weights/last.h5";

pub const CV: &str = "\
Examples:
  nerveseg cv --folds 5 --out-dir cv                         every fold, one after another
  nerveseg cv --folds 5 --out-dir cv --devices cuda:0,cuda:1  two folds at a time
  nerveseg cv --folds 5 --out-dir cv --fold 2                fold 2 alone, a cluster job (README)
  nerveseg cv --folds 5 --out-dir cv                         after the five jobs: their scores
  nerveseg predict --ensemble cv --tta                       then predict with all five";

pub const PREDICT: &str = "\
Examples:
  nerveseg predict                                           imgs_test.npy with weights/weights.h5
  nerveseg predict --images scans/new --out-dir masks --overlays overlays
  nerveseg predict --images frame.png                        one image: frame_mask.png here
  nerveseg predict --weights a.h5 --weights b.h5 --tta       an ensemble, with mirrored frames";

pub const SUBMIT: &str = "\
Examples:
  nerveseg submit                                            imgs_mask_test.npy -> submission.csv
  nerveseg submit --threshold 0.7 --min-size 4000            a rule found by evaluate --sweep";

pub const EVALUATE: &str = "\
Examples:
  nerveseg evaluate                                          the checkpoint's own validation frames
  nerveseg evaluate --sweep                                  and the best threshold, size and gate
  nerveseg evaluate --images test/images --masks test/masks --mask-class 1 --size 512x512
  nerveseg evaluate --submission submission.csv --masks raw/test_masks";

pub const PLOT: &str = "\
Examples:
  nerveseg plot                                              weights/history.csv -> training.png
  nerveseg plot cv/fold-1/history.csv --out fold1.png";

pub const DEMO: &str = "\
Examples:
  nerveseg demo                                              the whole pipeline in a few minutes
  nerveseg demo --out demo-run --epochs 10";

pub const EXPORT: &str = "\
Examples:
  nerveseg export --onnx model.onnx                          frames to masks, for onnxruntime
  nerveseg export --onnx model.onnx --frame-size 420x580 --presence mask --presence-threshold 0.6
  nerveseg export --onnx folds.onnx --weights cv/fold-1/weights.h5 --weights cv/fold-2/weights.h5 --tta
  nerveseg export --torchscript model.pt                     model.pt and model.json, for PyTorch
  nerveseg export --torchscript model.pt --weights cv/fold-1/weights.h5";

pub const STREAM: &str = "\
Examples:
  nerveseg stream --weights weights.h5 --frame-size 420x580 < clip.raw > masks.raw
  ffmpeg -i clip.mp4 -f rawvideo -pix_fmt gray - \\
    | nerveseg stream --weights weights.h5 --frame-size 420x580 --overlay \\
    | ffmpeg -f rawvideo -pix_fmt rgb24 -s 580x420 -i - out.mp4
  nerveseg stream --input clip.raw --output masks.raw --frame-size 420x580 --bf16";

pub const CONVERT: &str = "\
Examples:
  nerveseg convert weights.h5 model.weights.h5               to Keras 3
  nerveseg convert model.weights.h5 weights.h5 --format keras2";

pub const INSPECT: &str = "\
Examples:
  nerveseg inspect weights/weights.h5                        network, statistics, the run
  nerveseg inspect weights.h5                                the original Keras file";

pub const INFO: &str = "\
Examples:
  nerveseg info                                              libtorch, devices, CPU, HDF5";

pub const BENCH: &str = "\
Examples:
  make bench                                                 every row, beside the references
  nerveseg bench train-step --images x96.npy --masks y96.npy --steps 10";

pub const COMPLETIONS: &str = "\
Examples:
  nerveseg completions bash > ~/.local/share/bash-completion/completions/nerveseg
  nerveseg completions fish > ~/.config/fish/completions/nerveseg.fish";
