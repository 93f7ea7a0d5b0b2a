using SecureMesh.Core;

namespace SecureMesh.Storage;

/// <summary>String key/value settings (listen address, download folder, scanner command…); the caller validates values.</summary>
public sealed class ConfigStore
{
    /// <summary>Longest accepted key.</summary>
    public const int MaxKeyLength = 128;

    private readonly SecureMeshDatabase _database;

    internal ConfigStore(SecureMeshDatabase database) => _database = database;

    /// <summary>The value of <paramref name="key"/>, or null when unset.</summary>
    public string? Get(string key)
    {
        ValidateKey(key);
        return _database.Read(connection =>
        {
            using var command = SecureMeshDatabase.Command(connection, "SELECT value FROM config WHERE key = $key", ("$key", key));
            return command.ExecuteScalar() as string;
        });
    }

    /// <summary>Sets <paramref name="key"/> to <paramref name="value"/>; audited as <c>config.set</c> with the key only.</summary>
    public void Set(string key, string value)
    {
        ValidateKey(key);
        ArgumentNullException.ThrowIfNull(value);
        _database.Write(tx =>
        {
            SecureMeshDatabase.Execute(tx,
                "INSERT INTO config (key, value) VALUES ($key, $value) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                ("$key", key), ("$value", value));
            _database.Audit.AppendCore(tx, "config.set", null, $"key={key}");
            return 0;
        });
    }

    /// <summary>Removes <paramref name="key"/>; false when it was not set.</summary>
    public bool Remove(string key)
    {
        ValidateKey(key);
        return _database.Write(tx =>
        {
            if (SecureMeshDatabase.Execute(tx, "DELETE FROM config WHERE key = $key", ("$key", key)) == 0)
            {
                return false;
            }
            _database.Audit.AppendCore(tx, "config.removed", null, $"key={key}");
            return true;
        });
    }

    /// <summary>All settings, ordered by key.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> List() => _database.Read(connection =>
    {
        using var command = SecureMeshDatabase.Command(connection, "SELECT key, value FROM config ORDER BY key");
        using var reader = command.ExecuteReader();
        var items = new List<KeyValuePair<string, string>>();
        while (reader.Read())
        {
            items.Add(new(reader.GetString(0), reader.GetString(1)));
        }
        return items;
    });

    private static void ValidateKey(string key)
    {
        if (string.IsNullOrWhiteSpace(key) || key.Length > MaxKeyLength || key.Any(char.IsControl))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"invalid config key: use 1 to {MaxKeyLength} printable characters");
        }
    }
}
