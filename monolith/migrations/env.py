"""Alembic environment of the monolith's one database (every context's tables)."""

from alembic import context

from migrate.kernel.sql import HOSTING_METADATA, create_engine
from migrate.manifest import load

manifest = load(context.config.attributes.get("manifest_path"))
target_metadata = [HOSTING_METADATA] + [
    c.load(c.metadata) for c in manifest.contexts.values()
]
url = context.config.get_main_option("sqlalchemy.url")
if not url:
    raise SystemExit("alembic: sqlalchemy.url is not set")

if context.is_offline_mode():
    context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
