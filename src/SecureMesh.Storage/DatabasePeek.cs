using Microsoft.Data.Sqlite;

namespace SecureMesh.Storage;

/// <summary>
/// Read-only look-ups for fast commands (<c>id</c>) that must not create, migrate or lock the database.
/// Any problem (no file, older schema, corruption) reads as "not set"; the full open reports it properly.
/// </summary>
public static class DatabasePeek
{
    /// <summary>The configured value of <paramref name="key"/>, or null when the database or the key is absent.</summary>
    public static string? Config(string dataDirectory, string key)
    {
        var path = Path.Combine(dataDirectory, SecureMeshDatabase.FileName);
        if (!File.Exists(path))
        {
            return null;
        }
        try
        {
            using var connection = new SqliteConnection(new SqliteConnectionStringBuilder
            {
                DataSource = path,
                Mode = SqliteOpenMode.ReadOnly,
                Pooling = false,
            }.ToString());
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT value FROM config WHERE key = $key";
            command.Parameters.AddWithValue("$key", key);
            return command.ExecuteScalar() as string;
        }
        catch (SqliteException)
        {
            return null;
        }
    }
}
