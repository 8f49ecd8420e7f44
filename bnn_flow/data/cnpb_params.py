"""The knobs of the CNPB-synth generator (`bnn_flow.data.cnpb`), in a module of their own.

Both the generator (`cnpb`) and the renderer (`cnpb_render`) use `CnpbSynthParams`; keeping it here lets
the imports run one way (cnpb -> cnpb_render -> cnpb_params). `from bnn_flow.data.cnpb import
CnpbSynthParams` keeps working: cnpb re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CnpbSynthParams:
    """Every knob of the CNPB-synth generator. Ranges are (low, high), sampled uniformly per image.

    Sizes are relative to the 100x100 render canvas; probabilities are per image.

    Attributes:
        rotation_deg: in-plane rotation of the code, degrees (default (-25, 25)).
        code_height_frac: cap height of the code as a fraction of the image height (default (0.14, 0.3)).
        stretch: horizontal scale of the code, <1 condensed, >1 expanded (default (0.75, 1.3)).
        char_spacing: extra letter spacing as a fraction of the font size (default (-0.04, 0.3)).
        baseline_wobble: std of each character's vertical offset, fraction of font size (default 0.02).
        center_jitter: max offset of the code centre from the image centre, fraction (default 0.22).
        perspective: max corner displacement of the code quad, fraction of its size (default 0.12).
        fonts: TrueType files from matplotlib's font folder, chosen uniformly (default: 14 DejaVu/STIX/CM).
        dot_matrix_prob: probability of ink-jet dot-matrix print instead of a font (default 0.2).
        frame_prob: probability of a printed rectangle around the code (default 0.2).
        ink_wear: strength of patchy fading/speckle dropout of the code ink (default (0, 0.3)).
        dark_carton_prob: probability of a dark printed carton with light ink (default 0.15).
        print_band_prob: probability of a printed stripe/area of another colour (default 0.35).
        box_edge_prob: probability of a box edge, corner or flap seam beside the code (default 0.5).
        label_prob: probability the code is printed on a white label on a light box (default 0.3).
        tape_prob: probability of translucent packing tape across the image (default 0.2).
        distractors: (min, max) count of other print: strings, small text lines, barcodes (default (1, 5)).
        occlusion_prob: probability of a bar, thumb or sticker over part of the code (default 0.3).
        occlusion_max_cover: max fraction of the code's ink pixels an occluder may hide (default 0.25).
        gradient: max illumination change across the image, fraction (default 0.35).
        shadow_prob: probability of a soft cast shadow (default 0.3).
        glare_prob: probability of a specular highlight (default 0.1).
        colour_cast: max per-channel white-balance error, fraction (default 0.1).
        brightness: exposure factor (default (0.7, 1.2)).
        contrast: contrast factor about mid-grey (default (0.6, 1.15)).
        gamma: gamma applied to the 0..1 image (default (0.75, 1.4)).
        blur_sigma: Gaussian blur sigma in pixels of the 100x100 canvas (default (0, 1.2)).
        motion_blur_prob: probability of a 5-pixel motion blur (default 0.1).
        noise_std: std of additive Gaussian sensor noise, 0..255 scale (default (1, 12)).
        jpeg_prob: probability of a JPEG round trip (default 0.3).
        jpeg_quality: JPEG quality range, high end exclusive (default (30, 90)).
    """

    rotation_deg: tuple[float, float] = (-25.0, 25.0)
    code_height_frac: tuple[float, float] = (0.14, 0.30)
    stretch: tuple[float, float] = (0.75, 1.3)
    char_spacing: tuple[float, float] = (-0.04, 0.3)
    baseline_wobble: float = 0.02
    center_jitter: float = 0.22
    perspective: float = 0.12
    fonts: tuple[str, ...] = (
        "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf", "DejaVuSans-BoldOblique.ttf",
        "DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSansMono-Oblique.ttf", "DejaVuSerif.ttf",
        "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf", "STIXGeneral.ttf", "STIXGeneralBol.ttf",
        "cmtt10.ttf", "cmss10.ttf",
    )
    dot_matrix_prob: float = 0.2
    frame_prob: float = 0.2
    ink_wear: tuple[float, float] = (0.0, 0.3)
    dark_carton_prob: float = 0.15
    print_band_prob: float = 0.35
    box_edge_prob: float = 0.5
    label_prob: float = 0.3
    tape_prob: float = 0.2
    distractors: tuple[int, int] = (1, 5)
    occlusion_prob: float = 0.3
    occlusion_max_cover: float = 0.25
    gradient: float = 0.35
    shadow_prob: float = 0.3
    glare_prob: float = 0.1
    colour_cast: float = 0.1
    brightness: tuple[float, float] = (0.7, 1.2)
    contrast: tuple[float, float] = (0.6, 1.15)
    gamma: tuple[float, float] = (0.75, 1.4)
    blur_sigma: tuple[float, float] = (0.0, 1.2)
    motion_blur_prob: float = 0.1
    noise_std: tuple[float, float] = (1.0, 12.0)
    jpeg_prob: float = 0.3
    jpeg_quality: tuple[int, int] = (30, 90)
