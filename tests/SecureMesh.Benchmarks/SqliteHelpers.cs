using Microsoft.Data.Sqlite;

namespace SecureMesh.Benchmarks;

/// <summary>Bulk-insert helper for seeding benchmark databases.</summary>
internal static class SqliteCommandExtensions
{
    public static SqliteCommand Prepared(SqliteTransaction transaction, string sql, params string[] parameters)
    {
        var command = transaction.Connection!.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var name in parameters)
        {
            command.Parameters.Add(name, SqliteType.Text);
        }
        command.Prepare();
        return command;
    }
}
