"""The performance report's ``QueryResultCache`` (section 4.2), verbatim but for a key prefix,
and the same revenue analytics cached by sqlaopt: for the tests of the report's bugs.

:func:`main` calls :func:`revenue` once (in a fresh interpreter, from the tests) and prints
what the cache did.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

import sqlaopt.cache as cache
from sqlaopt.booking.models import Payment


class QueryResultCache:
    """Section 4.2 of the report, unchanged except for ``prefix`` (the test shares Redis)."""

    def __init__(self, redis_client: Any, prefix: str) -> None:
        self.redis = redis_client
        self.prefix = prefix
        self.default_ttl = 300  # 5 minutes

    def cache_analytics_query(self, ttl: int = 600) -> Callable[..., Any]:
        """Cache analytics queries for 10 minutes"""
        def decorator(func: Callable[..., Any]) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                # Create cache key from function name and args
                cache_key = (f"{self.prefix}analytics:{func.__name__}:"
                             f"{hash(str(args) + str(kwargs))}")
                # Try to get from cache
                cached_result = self.redis.get(cache_key)
                if cached_result:
                    return json.loads(cached_result)
                # Execute query and cache result
                result = func(*args, **kwargs)
                self.redis.setex(cache_key, ttl, json.dumps(result, default=str))
                return result
            return wrapper
        return decorator

    def invalidate_user_cache(self, user_id: int) -> None:
        """Invalidate all cached queries for a user"""
        pattern = f"{self.prefix}analytics:*:{user_id}:*"
        keys = self.redis.keys(pattern)
        if keys:
            self.redis.delete(*keys)


def analytics(session: Session, user_id: int) -> dict[str, Any]:
    """The report's revenue analytics for one user: total, count and first payment time."""
    row = session.execute(
        select(func.coalesce(func.sum(Payment.amount), 0), func.count(Payment.id),
               func.min(Payment.created_at)).where(Payment.user_id == user_id)).one()
    return {"total_revenue": Decimal(row[0]), "transactions": row[1], "first": row[2]}


@cache.cached(600)
def revenue(session: Session, user_id: int) -> dict[str, Any]:
    return analytics(session, user_id)


def main(url: str, redis_url: str, namespace: str, user_id: str) -> None:
    engine = create_engine(url)
    cache.install(redis_url, namespace=namespace)
    with Session(engine) as session:
        result = revenue(session, int(user_id))
    stats = cache.stats()
    print(json.dumps({"hits": stats.hits, "misses": stats.misses,
                      "total": str(result["total_revenue"])}))
    cache.uninstall()
    engine.dispose()

