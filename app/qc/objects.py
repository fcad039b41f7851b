"""The objects an answer names, as CHAIR counts object hallucination (Rohrbach et al., 2018): COCO's 80 object
classes, each with the everyday words for it, so that "a man" and "a person" are the same object. LLaVA-Instruct's
images are COCO's; a conversation written from a source (a caption, the dataset's words) should name no object
its source does not."""

from __future__ import annotations

import re
from functools import cache

# class -> the words that name it (singular; plurals are made below, irregular ones listed)
NAMES: dict[str, tuple[str, ...]] = {
    "person": ("person", "man", "woman", "boy", "girl", "child", "kid", "player", "skier", "surfer", "people",
               "lady", "gentleman"),
    "bicycle": ("bicycle", "bike"), "car": ("car", "automobile", "sedan"), "motorcycle": ("motorcycle", "motorbike"),
    "airplane": ("airplane", "aeroplane", "plane", "jet", "aircraft"), "bus": ("bus",), "train": ("train",),
    "truck": ("truck", "lorry"), "boat": ("boat", "ship", "sailboat", "kayak", "canoe"),
    "traffic light": ("traffic light", "stoplight"), "fire hydrant": ("fire hydrant", "hydrant"),
    "stop sign": ("stop sign",), "parking meter": ("parking meter",), "bench": ("bench",),
    "bird": ("bird", "pigeon", "seagull", "duck", "parrot"), "cat": ("cat", "kitten"),
    "dog": ("dog", "puppy", "pup"), "horse": ("horse", "pony"), "sheep": ("sheep", "lamb"),
    "cow": ("cow", "cattle", "calf", "bull"), "elephant": ("elephant",), "bear": ("bear",), "zebra": ("zebra",),
    "giraffe": ("giraffe",), "backpack": ("backpack", "rucksack"), "umbrella": ("umbrella", "parasol"),
    "handbag": ("handbag", "purse"), "tie": ("necktie",), "suitcase": ("suitcase", "luggage"),
    "frisbee": ("frisbee",), "skis": ("ski",), "snowboard": ("snowboard",),
    "sports ball": ("ball", "football", "soccer ball", "basketball"),
    "kite": ("kite",), "baseball bat": ("baseball bat", "bat"), "baseball glove": ("baseball glove", "mitt"),
    "skateboard": ("skateboard",), "surfboard": ("surfboard",), "tennis racket": ("tennis racket", "racket",
                                                                                   "racquet"),
    "bottle": ("bottle",), "wine glass": ("wine glass",), "cup": ("cup", "mug"), "fork": ("fork",),
    "knife": ("knife",), "spoon": ("spoon",), "bowl": ("bowl",), "banana": ("banana",), "apple": ("apple",),
    "sandwich": ("sandwich", "burger", "hamburger"), "orange": ("orange",), "broccoli": ("broccoli",),
    "carrot": ("carrot",), "hot dog": ("hot dog", "hotdog"), "pizza": ("pizza",), "donut": ("donut", "doughnut"),
    "cake": ("cake", "cupcake"), "chair": ("chair", "stool"), "couch": ("couch", "sofa"),
    "potted plant": ("potted plant", "houseplant", "plant"), "bed": ("bed",),
    "dining table": ("dining table", "table", "desk"), "toilet": ("toilet",), "tv": ("tv", "television"),
    "laptop": ("laptop", "computer", "notebook computer"), "mouse": ("computer mouse",), "remote": ("remote",
                                                                                                  "remote control"),
    "keyboard": ("keyboard",), "cell phone": ("cell phone", "phone", "smartphone", "mobile phone"),
    "microwave": ("microwave",), "oven": ("oven", "stove"), "toaster": ("toaster",), "sink": ("sink",),
    "refrigerator": ("refrigerator", "fridge"), "book": ("book",), "clock": ("clock",), "vase": ("vase",),
    "scissors": ("scissors",), "teddy bear": ("teddy bear", "teddy"), "hair drier": ("hair drier", "hair dryer",
                                                                                      "hairdryer"),
    "toothbrush": ("toothbrush",),
}
IRREGULAR = {"man": "men", "woman": "women", "child": "children", "person": "persons", "knife": "knives",
             "mouse": "mice", "calf": "calves", "sheep": "sheep", "broccoli": "broccoli", "luggage": "luggage",
             "cattle": "cattle", "scissors": "scissors", "people": "people", "gentleman": "gentlemen"}


def _forms(name: str) -> set[str]:
    head, _, last = name.rpartition(" ")
    plural = IRREGULAR.get(last) or (last + "es" if last.endswith(("s", "sh", "ch", "x")) else
                                     last[:-1] + "ies" if last.endswith("y") and last[-2:-1] not in "aeiou" else
                                     last + "s")
    return {name, f"{head} {plural}".strip()}


@cache
def _pattern() -> tuple[re.Pattern[str], dict[str, str]]:
    """One expression for every form of every name (longest first, so "teddy bear" is not read as "bear")."""
    owner = {form: kind for kind, names in NAMES.items() for name in names for form in _forms(name)}
    alternatives = "|".join(re.escape(form) for form in sorted(owner, key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})\b", re.IGNORECASE), owner


def objects_named(text: str) -> dict[str, str]:
    """The COCO objects `text` names: object -> the first word that named it."""
    pattern, owner = _pattern()
    found: dict[str, str] = {}
    for match in pattern.finditer(text):
        word = match.group(0)
        found.setdefault(owner[word.lower()], word)
    return found
