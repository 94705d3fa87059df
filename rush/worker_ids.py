"""Readable worker ids: ``adjective_animal_1a2b3c4d`` (unique by the random suffix)."""

from __future__ import annotations

import secrets

_ADJECTIVES = (
    "agile amber ancient bold brave bright calm clever cosmic crisp curious daring eager "
    "elder fancy fierce gentle giant glad golden grand happy hardy humble jolly keen kind "
    "lively lucky lunar merry mighty misty modest noble nimble patient placid polar proud "
    "quick quiet rapid regal robust rustic sandy serene sharp shiny silent silver sleek "
    "smart snowy solar spry steady stellar stout sunny swift tidy tranquil vivid wise witty "
    "young zealous").split()
_ANIMALS = (
    "albatross alpaca antelope badger beaver bison bobcat buffalo camel caribou cheetah "
    "condor coyote crane dingo dolphin donkey eagle falcon ferret finch gazelle gecko "
    "gibbon giraffe heron hyena ibex iguana jackal jaguar kestrel koala lemur leopard llama "
    "lynx macaw marmot meerkat mink moose narwhal ocelot okapi orca osprey otter owl panda "
    "panther pelican puffin quokka raven salmon seal stork tapir tiger toucan walrus weasel "
    "wombat yak zebra").split()


def new_worker_id() -> str:
    """A fresh worker id such as ``swift_otter_9f3a61c2``."""
    return f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_ANIMALS)}_{secrets.token_hex(4)}"
