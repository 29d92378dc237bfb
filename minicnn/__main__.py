"""``python -m minicnn COMMAND``: train, evaluate, verify, summary.

    python -m minicnn train lenet5                      # the main job: LeNet-5 on MNIST (bundled)
    python -m minicnn train resnet20 --dataset cifar10 --device cuda
    python -m minicnn train lenet5 --resume runs/lenet5-mnist/checkpoint.npz
    python -m minicnn evaluate lenet5 runs/lenet5-mnist/checkpoint.npz
    python -m minicnn train yolo_v2 --dataset mnist-detection       # detectors: yolo_v1/v2/v3, fast/faster_rcnn
    python -m minicnn evaluate yolo_v2 runs/yolo_v2-mnist-detection/checkpoint.npz   # AP per class, mAP
    python -m minicnn detect yolo_v2 runs/yolo_v2-mnist-detection/checkpoint.npz digits.png --out boxes.png
    python -m minicnn verify ...                        # minicnn.verify
    python -m minicnn summary MODEL ...                 # minicnn.summary
    python -m minicnn profile MODEL ...                 # minicnn.profile: where a training step's time goes
"""
import argparse
import os
import sys

SUMMARY_HELP = "print a model's layers, output shapes and parameter counts (minicnn.summary)"


def _train_parser(sub):
    p = sub.add_parser("train", help="train a model; defaults per model (lenet5: MNIST, >= 99%% test accuracy)",
                       description="Train MODEL.  Options left out take the model's defaults (see "
                                   "minicnn/train.py, DEFAULTS); when resuming, the checkpoint's.")
    p.add_argument("model", help="model name, e.g. lenet5")
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist", "cifar10", "cifar100", "mnist-detection",
                                         "mnist-segmentation"])
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="learning rate (at the start of the cosine schedule)")
    p.add_argument("--optimizer", choices=["sgd", "adam", "rmsprop"])
    p.add_argument("--momentum", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument("--seed", type=int, help="seeds weights, data order and augmentation (default 0)")
    p.add_argument("--threads", type=int, help="CPU threads for the kernels and BLAS (lenet5: 1, the fastest "
                                               "for so small a model)")
    p.add_argument("--out", help="folder for checkpoint.npz, metrics.csv, curves.png (default runs/MODEL-DATASET)")
    p.add_argument("--no-augment", dest="augment", action="store_const", const=False,
                   help="train without augmentation (random shifts; flips for CIFAR)")
    p.add_argument("--resume", metavar="CKPT", help="continue the run saved in this checkpoint")
    p.add_argument("--data", metavar="DIR", help="dataset folder (default: bundled MNIST; others "
                                                 "$MINICNN_DATA or ~/.cache/minicnn, downloaded if missing)")
    p.add_argument("--train-size", "--limit-train", dest="limit_train", type=int, metavar="N",
                   help="train on the first N training images only (short runs, tests)")
    p.add_argument("--limit-test", type=int, help=argparse.SUPPRESS)


def _evaluate_parser(sub):
    p = sub.add_parser("evaluate", help="accuracy, error rates and confusion matrix of a checkpoint")
    p.add_argument("model")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint.npz of a run, or a saved state dict")
    p.add_argument("--dataset", choices=["mnist", "fashion-mnist", "cifar10", "cifar100", "mnist-detection"])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--batch-size", type=int, help="images per batch (default 1000; detection 50)")
    p.add_argument("--data", metavar="DIR")
    p.add_argument("--limit-test", type=int, help=argparse.SUPPRESS)


def _detect_parser(sub):
    p = sub.add_parser("detect", help="draw a trained detector's boxes on your own image")
    p.add_argument("model", help="detector name, e.g. yolo_v2")
    p.add_argument("checkpoint", metavar="CKPT", help="checkpoint.npz of a run, or a saved state dict")
    p.add_argument("image", metavar="IMAGE", help="a PNG (light digits on a dark ground; a light ground is "
                                                  "inverted)")
    p.add_argument("--out", help="where to write the picture (default IMAGE-detections.png)")
    p.add_argument("--score", type=float, default=0.5, help="draw and list boxes from this score up (0.5)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m minicnn", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _train_parser(sub)
    _evaluate_parser(sub)
    _detect_parser(sub)
    # verify and summary take their own arguments; main() hands them over before argparse sees them
    sub.add_parser("verify", help="check the engine's ops and kernels (minicnn.verify)", add_help=False)
    sub.add_parser("summary", help=SUMMARY_HELP, add_help=False)
    sub.add_parser("profile", help="time one training step layer by layer (minicnn.profile)", add_help=False)
    sub.add_parser("style", help="neural style transfer: CONTENT STYLE --out OUT.png (minicnn.style)", add_help=False)
    sub.add_parser("show", help="filters, feature maps, saliency and Grad-CAM of a checkpoint (minicnn.show)",
                   add_help=False)
    return parser


def train(args):
    import minicnn as mc
    from minicnn import distributed as dist
    from minicnn import train as T
    from minicnn.data import DownloadError
    if dist.launched_world_size() > 1 and not dist.is_initialized():
        # under mpiexec -n N: data-parallel, every rank runs this command; GPUs reduce through NCCL
        dist.init_process_group("nccl" if args.device == "cuda" and dist.is_nccl_available() else "mpi")
    world, quiet = (dist.get_world_size(), dist.get_rank() > 0) if dist.is_initialized() else (1, False)
    given = {k: v for k, v in vars(args).items() if k not in ("command", "model", "resume")}
    if args.resume:
        if not os.path.exists(args.resume):
            print(f"error: no checkpoint at {args.resume}", file=sys.stderr)
            return 2
        saved = mc.load(args.resume)["config"]
        cfg = dict(saved, **{k: v for k, v in given.items() if v is not None})
        cfg["model"] = args.model.lower()
    else:
        cfg = T.config_for(args.model, **given)
    ckpt = os.path.join(cfg["out"], "checkpoint.npz")
    if not quiet:
        print(f"training {cfg['model']} on {cfg['dataset']}: {cfg['epochs']} epochs, batch {cfg['batch_size']}, "
              f"{cfg['optimizer']} lr {cfg['lr']} ({cfg['schedule']}), {cfg['device']}"
              + (f" x {world} ranks" if world > 1 else "") + f", seed {cfg['seed']} -> {cfg['out']}")
    try:
        history, _ = T.fit(cfg, resume=args.resume)
    except T.NonFiniteLossError as e:
        kept = f"the last good checkpoint is kept at {ckpt}" if os.path.exists(ckpt) else "no epoch had finished"
        print(f"error: {e}; training stopped, {kept}. Try a lower --lr"
              + (f" (resume with --resume {ckpt} --lr ...)" if os.path.exists(ckpt) else ""), file=sys.stderr)
        return 1
    except (DownloadError, FileNotFoundError) as e:        # no data: the message says which file and what to do
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:                          # mpiexec hands Ctrl-C to every rank: rank 0 says it
        if not quiet:
            print(f"\ninterrupted; continue with: python -m minicnn train {cfg['model']} --resume {ckpt}",
                  file=sys.stderr)
        return 130
    if history and not quiet and "test_miou" in history[-1]:           # segmentation
        print(f"done: test mIoU {history[-1]['test_miou']:.4f}, pixel accuracy "
              f"{100 * history[-1]['test_pixel_acc']:.2f}% after {len(history)} epochs; "
              f"{cfg['out']}/metrics.csv, curves.png, segmentation.png, checkpoint.npz")
    elif history and not quiet and "test_auc" in history[-1]:          # embeddings
        print(f"done: verification ROC AUC {history[-1]['test_auc']:.4f}, 1-NN accuracy "
              f"{100 * history[-1]['test_nn_acc']:.2f}% after {len(history)} epochs; "
              f"{cfg['out']}/metrics.csv, curves.png, embeddings.png, checkpoint.npz")
    elif history and not quiet and "test_map50" in history[-1]:
        print(f"done: test mAP@0.5 {history[-1]['test_map50']:.4f}, mAP@0.5:0.95 {history[-1]['test_map']:.4f} "
              f"after {len(history)} epochs; {cfg['out']}/metrics.csv, curves.png, detections.png, checkpoint.npz")
    elif history and not quiet:
        print(f"done: test accuracy {100 * history[-1]['test_acc']:.2f}% after {len(history)} epochs; "
              f"{cfg['out']}/metrics.csv, curves.png, checkpoint.npz")
    return 0


def evaluate(args):
    from minicnn import metrics
    from minicnn import train as T
    from minicnn.data import DataLoader
    import minicnn as mc
    state = mc.load(args.checkpoint)
    saved = state.get("config") if isinstance(state.get("config"), dict) else {}
    dataset = args.dataset or saved.get("dataset") or T.config_for(args.model)["dataset"]
    if dataset == "mnist-detection":
        return _evaluate_detector(args, state, saved)
    args.batch_size = args.batch_size or 1000
    _, test, num_classes = T.build_datasets(dataset, args.data if args.data else saved.get("data"),
                                            limit_test=args.limit_test)
    model = T.build_model(args.model, num_classes, args.device)
    model.load_state_dict(state["model"] if isinstance(state.get("model"), dict) else state)
    loss, pred, target = T.evaluate(model, DataLoader(test, args.batch_size, device=args.device))
    print(f"{args.model} on the {dataset} test set ({len(target)} images)")
    print(f"  accuracy              {100 * metrics.accuracy(pred, target):.2f}%")
    print(f"  error rate            {100 * metrics.error_rate(pred, target):.2f}%")
    print(f"  balanced error rate   {100 * metrics.balanced_error_rate(pred, target, num_classes):.2f}%")
    print(f"  mean loss             {loss:.4f}")
    C = metrics.confusion_matrix(pred, target, num_classes)
    print("confusion matrix (rows: true class, columns: predicted class)")
    width = max(4, len(str(C.max())) + 1)
    print(" " * 5 + "".join(f"{j:>{width}}" for j in range(num_classes)))
    for i, row in enumerate(C):
        print(f"{i:>4} " + "".join(f"{v:>{width}}" for v in row))
    return 0


def _load_detector(name, state, device):
    from minicnn import train as T
    model = T.build_model(name, 10, device)
    model.load_state_dict(state["model"] if isinstance(state.get("model"), dict) else state)
    return model.eval()


def _evaluate_detector(args, state, saved):
    from minicnn.data import DataLoader, MNISTDetection, detection_collate
    from minicnn.metrics import mean_average_precision
    from minicnn.tasks.detection import predict
    test = MNISTDetection(args.data or saved.get("data"), train=False, size=args.limit_test)
    model = _load_detector(args.model, state, args.device)
    loader = DataLoader(test, args.batch_size or 50, device=args.device, collate_fn=detection_collate)
    preds, targets = predict(model, loader)
    r = mean_average_precision(preds, targets, num_classes=len(test.classes))
    print(f"{args.model} on the mnist-detection test set ({len(test)} images, "
          f"{sum(len(t['labels']) for t in targets)} digits)")
    print("AP@0.5 per class: " + "  ".join(f"{c}: {ap:.4f}" for c, ap in enumerate(r["ap"])))
    print(f"  mAP@0.5           {r['map']:.4f}")
    print(f"  mAP@0.5:0.95      {r['map_50_95']:.4f}")
    return 0


def detect(args):
    import numpy as np
    from matplotlib import image as mpimg
    import minicnn as mc
    from minicnn.models.yolo import YOLOv1
    from minicnn.tasks.detection import draw_detections
    if not os.path.exists(args.image):
        print(f"error: no image at {args.image}", file=sys.stderr)
        return 2
    state = mc.load(args.checkpoint)
    model = _load_detector(args.model, state, args.device)
    img = np.asarray(mpimg.imread(args.image), np.float32)
    img = img / 255 if img.max() > 1 else img
    grey = img[..., :3].mean(-1) if img.ndim == 3 else img
    if grey.mean() > 0.5:                                    # dark digits on white paper: make them light on black
        grey = 1 - grey
    H, W = grey.shape
    # the detectors are convolutional: any size that their strides divide (v1's fully connected head: 96 x 96)
    size = (model.image_size,) * 2 if isinstance(model, YOLOv1) else \
        tuple(max(32, int(round(v / 32)) * 32) for v in (H, W))
    rows = np.minimum((np.arange(size[0]) + 0.5) * H / size[0], H - 1).astype(int)
    cols = np.minimum((np.arange(size[1]) + 0.5) * W / size[1], W - 1).astype(int)
    x = grey[rows][:, cols][None, None]
    with mc.no_grad():
        pred = model(mc.tensor(x).to(args.device))[0]
    scale = np.array([W / size[1], H / size[0]] * 2, np.float32)
    pred = {"boxes": pred["boxes"] * scale, "scores": pred["scores"], "labels": pred["labels"]}
    out = args.out or os.path.splitext(args.image)[0] + "-detections.png"
    draw_detections(out, grey[None][None], [pred], score=args.score, columns=1)
    shown = pred["scores"] >= args.score
    print(f"{int(shown.sum())} detections (score >= {args.score}) -> {out}")
    for b, s, c in zip(pred["boxes"][shown], pred["scores"][shown], pred["labels"][shown]):
        print(f"  {c}  score {s:.3f}  box ({b[0]:.1f}, {b[1]:.1f}, {b[2]:.1f}, {b[3]:.1f})")
    return 0


def verify(argv):
    from minicnn import verify as V                    # imported only when asked for
    return V.main(argv)


def _style(argv):
    from minicnn.style import main as style_main
    return style_main(argv)


def _show(argv):
    from minicnn.show import main as show_main
    return show_main(argv)


def summary(argv):
    # The model zoo's engineer provides minicnn/summary.py with main(argv) -> int; this wires it in.
    try:
        from minicnn.summary import main as summary_main   # minicnn.summary itself is the function
    except ImportError:
        print("error: minicnn.summary is not available in this version", file=sys.stderr)
        return 2
    return summary_main(argv)


def profile(argv):
    from minicnn.profile import main as profile_main
    return profile_main(argv)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    passthrough = {"verify": verify, "summary": summary, "profile": profile, "style": _style, "show": _show}
    if argv and argv[0] in passthrough:
        return passthrough[argv[0]](argv[1:])
    args = build_parser().parse_args(argv)
    rc = {"train": train, "evaluate": evaluate, "detect": detect}[args.command](args)
    if rc:                                   # one failed rank of a data-parallel run ends them all, or the
        from minicnn import distributed      # others would wait for it forever in their next Allreduce
        distributed.abort_all(rc)
    return rc


if __name__ == "__main__":
    sys.exit(main())
