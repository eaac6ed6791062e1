"""Small torchvision detection architectures for CPU (the demo detector).

:data:`ARCHITECTURES` maps a name (a model spec's ``architecture``) to a builder
``builder(num_classes, **kwargs) -> torch.nn.Module``. Every builder uses torchvision's
detection components only, with no pretrained weights anywhere (nothing is downloaded).

Eval interface (torchvision detection models): ``model(list of CHW float tensors in
[0, 1])`` -> list of dicts with ``boxes`` (N x 4, x1 y1 x2 y2 in input pixels), ``labels``
(1..num_classes-1; label ``k`` is the model spec's ``classes[k-1]``) and ``scores``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
from torch import nn


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SmallFPNBackbone(nn.Module):
    """A small plain CNN (outputs at strides 8 and 16) with torchvision's FeaturePyramidNetwork.

    Parameters
    ----------
    widths : tuple of int
        Channels at strides 2, 4, 8, 16.
    out_channels : int
        FPN channels (``self.out_channels``, as torchvision's detectors expect).
    """

    def __init__(self, widths: tuple[int, int, int, int] = (16, 32, 64, 128), out_channels: int = 64):
        super().__init__()
        from torchvision.ops import FeaturePyramidNetwork

        w0, w1, w2, w3 = widths
        self.stem = _conv(3, w0, 2)                                          # stride 2
        self.layer1 = nn.Sequential(_conv(w0, w1, 2), _conv(w1, w1))         # stride 4
        self.layer2 = nn.Sequential(_conv(w1, w2, 2), _conv(w2, w2))         # stride 8
        self.layer3 = nn.Sequential(_conv(w2, w3, 2), _conv(w3, w3))         # stride 16
        self.fpn = FeaturePyramidNetwork([w2, w3], out_channels)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        c2 = self.layer2(self.layer1(self.stem(x)))
        c3 = self.layer3(c2)
        return self.fpn(OrderedDict([("0", c2), ("1", c3)]))


def acne_small_frcnn(num_classes: int = 7, *, widths: tuple[int, int, int, int] = (16, 32, 64, 128),
                     fpn_channels: int = 64, representation: int = 256, min_size: int = 512, max_size: int = 512,
                     box_detections_per_img: int = 1000, box_score_thresh: float = 0.01) -> nn.Module:
    """A small Faster R-CNN for acne lesions (6-30 px at 512 px) on CPU.

    torchvision ``FasterRCNN`` (Ren et al., NeurIPS 2015) with :class:`SmallFPNBackbone`
    (feature pyramid: Lin et al., CVPR 2017), anchors 8/12/18 px at stride 8 and 24/34/48 px at
    stride 16 with aspect ratios 0.5, 1, 2, multi-scale RoIAlign 7x7 and a two-layer MLP box head of
    ``representation`` units. No pretrained weights.

    Parameters
    ----------
    num_classes : int
        Number of classes including background (7 for the six lesion classes).
    min_size, max_size : int
        torchvision's resize bounds; 512/512 keeps a 512 px photo at its size.
    box_detections_per_img : int
        Never the COCO default of 100: acne photos can carry hundreds of lesions.

    Returns
    -------
    torchvision.models.detection.FasterRCNN
    """
    from torchvision.models.detection import FasterRCNN
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
    from torchvision.ops import MultiScaleRoIAlign

    backbone = SmallFPNBackbone(widths, fpn_channels)
    anchors = AnchorGenerator(sizes=((8, 12, 18), (24, 34, 48)), aspect_ratios=((0.5, 1.0, 2.0),) * 2)
    roi_pool = MultiScaleRoIAlign(featmap_names=["0", "1"], output_size=7, sampling_ratio=2)
    head = TwoMLPHead(fpn_channels * 7 * 7, representation)
    predictor = FastRCNNPredictor(representation, num_classes)
    return FasterRCNN(
        backbone,
        num_classes=None,
        min_size=min_size,
        max_size=max_size,
        rpn_anchor_generator=anchors,
        rpn_pre_nms_top_n_train=1000,
        rpn_post_nms_top_n_train=500,
        rpn_pre_nms_top_n_test=1000,
        rpn_post_nms_top_n_test=300,
        box_roi_pool=roi_pool,
        box_head=head,
        box_predictor=predictor,
        box_batch_size_per_image=64,
        box_score_thresh=box_score_thresh,
        box_detections_per_img=box_detections_per_img,
    )


#: architecture name -> builder(num_classes, **kwargs)
ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {
    "acne_small_frcnn": acne_small_frcnn,
}
