"""From bytes of server memory to the number of objects a cache of that size holds.

A key costs the server more than its value: the key, the object header, the dict entry, the hash
table's bucket and the allocator's rounding (a 1,024-byte value takes about 1,300 bytes in Redis
7). So the simulator works in objects and this model converts:

* Redis: per object = (used_memory - used_memory_startup) / keys, fixed = used_memory_startup, from
  one INFO while the cache is in use; MEMORY USAGE of a few sampled keys is reported beside it as a
  cross-check (it leaves out the hash table and the client buffers, so it reads lower). A cache of
  M bytes holds (M - fixed) / per object keys: client buffers (a MONITOR's too) count against
  maxmemory and are spread over the keys here.
* Memcached: per object = limit_maxbytes / curr_items once the cache is full (it evicts): slab
  chunks, item headers and unused page tails are all in it. Before it is full, bytes / curr_items
  (the items' own size: the estimate is then low).
* A trace with sizes: the sizes themselves (per object = 1 and capacities in bytes).
"""

from __future__ import annotations

from dataclasses import dataclass

from cachetop.util.format import size


@dataclass(frozen=True)
class MemoryModel:
    bytes_per_object: float
    fixed_bytes: float = 0.0
    how: str = ""  # one line for the report: where the numbers came from
    by_size: bool = False  # capacities are bytes of the trace's own sizes
    unit: str = "bytes"  # "keys" for a trace without sizes (each key counts 1)

    def amount(self, memory: float) -> str:
        """A point of the memory axis in words: bytes as a size, or keys for a trace without sizes."""
        return f"{round(memory):,} keys" if self.unit == "keys" else size(memory)

    def objects_at(self, memory_bytes: float) -> float:
        if self.by_size:
            return max(0.0, memory_bytes - self.fixed_bytes)
        return max(0.0, (memory_bytes - self.fixed_bytes) / self.bytes_per_object)

    def bytes_for(self, objects: float) -> float:
        if self.by_size:
            return objects + self.fixed_bytes
        return self.fixed_bytes + objects * self.bytes_per_object


def redis_model(info: dict[str, int], keys: int, usage_sample: list[int] | None = None) -> MemoryModel:
    used = int(info.get("used_memory", 0))
    startup = int(info.get("used_memory_startup", 0))
    per = (used - startup) / keys if keys > 0 else 0.0
    how = f"(used_memory {used} - used_memory_startup {startup}) / {keys} keys = {per:.0f} bytes a key"
    if usage_sample:
        how += f"; MEMORY USAGE of {len(usage_sample)} keys: mean {sum(usage_sample) / len(usage_sample):.0f}"
    return MemoryModel(max(per, 1.0), float(startup), how)


def memcached_model(stats: dict[str, int]) -> MemoryModel:
    limit = int(stats.get("limit_maxbytes", 0))
    items = int(stats.get("curr_items", 0))
    used = int(stats.get("bytes", 0))
    full = int(stats.get("evictions", 0)) > 0 or (limit and used > 0.9 * limit)
    if items <= 0:
        return MemoryModel(1.0, 0.0, "no items in the cache: cannot tell the memory per item")
    if full:
        per = limit / items
        how = f"limit_maxbytes {limit} / {items} items (full) = {per:.0f} bytes an item"
    else:
        per = used / items
        how = f"bytes {used} / {items} items = {per:.0f} bytes an item (not full yet: an underestimate)"
    return MemoryModel(max(per, 1.0), 0.0, how)
