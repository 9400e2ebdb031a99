"""moto in server mode, with two speed-ups for the scale benchmark.

1. moto reads a resource's tags by scanning every tag of every resource in the region
   (``describe_tags`` filtered by resource id, with a regex per tag), so describing n
   snapshots costs n x (all tags): minutes at 10,000 snapshots. This reads the
   resource's own tags from the same store instead: the same tags, in the same form.
2. moto matches a filter's values with ``fnmatch``, one pattern at a time, so a
   ``snapshot-id`` (or ``image-id``) filter of 200 ids over 37,500 snapshots costs 7.5
   million pattern matches, about 10 s a call: the AMI retirement of 5,000 instances
   timed out reading the snapshots behind its AMIs. A filter of more than 8 values none
   of which has a wildcard (``*``, ``?``, ``[``) is matched by set membership instead:
   the same answer (``fnmatch`` of a pattern without wildcards is an exact match on
   Linux), in one lookup.

Used by ``npm run bench`` only; the tests and the demo run moto unchanged.
"""

import sys

from moto.ec2 import utils as ec2_utils
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix
from moto.server import main


def _own_tags(self):
    resource_id = getattr(self, "id", None)
    if not resource_id:
        return []
    resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
    return [
        {"resource_id": resource_id, "key": key, "value": value, "resource_type": resource_type}
        for key, value in self.ec2_backend.tags.get(resource_id, {}).items()
    ]


TaggedEC2Resource.get_tags = _own_tags

_match_by_pattern = ec2_utils.is_filter_matching
# The filter values last seen and their set: generic_filter passes the same list for
# every object of one call, so it is built once per call.
_last_values: list = [None, None]


def _exact_values(values):
    if _last_values[0] is not values:
        wild = any(isinstance(v, str) and any(c in v for c in "*?[") for v in values)
        _last_values[0] = values
        _last_values[1] = None if wild else frozenset(values)
    return _last_values[1]


def _is_filter_matching(obj, _filter, filter_value):
    if isinstance(filter_value, list) and len(filter_value) > 8:
        exact = _exact_values(filter_value)
        if exact is not None:
            value = obj.get_filter_value(_filter)
            if isinstance(value, str):
                return value in exact
    return _match_by_pattern(obj, _filter, filter_value)


ec2_utils.is_filter_matching = _is_filter_matching

if __name__ == "__main__":
    sys.exit(main())
