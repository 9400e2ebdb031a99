"""moto in server mode, with one speed-up for the scale benchmark.

moto reads a resource's tags by scanning every tag of every resource in the region
(``describe_tags`` filtered by resource id, with a regex per tag), so describing n
snapshots costs n x (all tags): minutes at 10,000 snapshots. This reads the resource's
own tags from the same store instead: the same tags, in the same form. Used by
``npm run bench`` only; the tests and the demo run moto unchanged.
"""

import sys

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

if __name__ == "__main__":
    sys.exit(main())
