from datamigration.cli import data_app

data_app(prog_name="cerebrum data")
