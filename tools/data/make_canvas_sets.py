"""Write the Fashion-MNIST canvas sets (COCO instances + ADE-style class maps).

    python tools/data/make_canvas_sets.py data/canvas --num-train 400 --num-val 100

See mmmim/datasets/canvas.py for the layout; configs/benchmarks/mask_rcnn/
canvas_*.py and configs/benchmarks/upernet/canvas_*.py read it.
"""
import argparse

from mmmim.datasets.canvas import make_canvas_sets


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir')
    parser.add_argument('--num-train', type=int, default=400)
    parser.add_argument('--num-val', type=int, default=100)
    parser.add_argument('--size', type=int, default=64)
    parser.add_argument('--min-obj', type=int, default=20)
    parser.add_argument('--max-obj', type=int, default=32)
    parser.add_argument('--max-objects', type=int, default=3)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    info = make_canvas_sets(args.out_dir, args.num_train, args.num_val,
                            args.size, (args.min_obj, args.max_obj),
                            args.max_objects, args.seed)
    print(info)


if __name__ == '__main__':
    main()
