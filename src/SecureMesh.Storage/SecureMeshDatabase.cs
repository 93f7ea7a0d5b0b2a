using System.Globalization;
using Microsoft.Data.Sqlite;
using SecureMesh.Core;

namespace SecureMesh.Storage;

/// <summary>
/// The node's SQLite database: one file in the data directory, WAL mode, schema migrated at open.
/// A CLI and a running node may hold it at the same time; writers wait on each other (busy timeout)
/// rather than fail. All members are thread-safe: one connection, used under a lock.
/// </summary>
/// <remarks>
/// synchronous=FULL: with WAL, NORMAL keeps the file consistent after a process crash but may lose the last
/// commits on a power cut; FULL makes every commit durable. Writes here are small and rare (user actions,
/// audit entries), so durability of trust decisions and audit entries is worth one fsync per commit.
/// </remarks>
public sealed class SecureMeshDatabase : IDisposable
{
    /// <summary>The file name used inside a data directory.</summary>
    public const string FileName = "securemesh.db";

    private const int BusyTimeoutMs = 5000;
    private static readonly byte[] SqliteMagic = "SQLite format 3\0"u8.ToArray();

    private readonly SqliteConnection _connection;
    private readonly SqliteCommand _dataVersion;
    private long _localCommits;
    private bool _disposed;

    private SecureMeshDatabase(string path, SqliteConnection connection, TimeProvider time)
    {
        Path = path;
        _connection = connection;
        Time = time;
        _dataVersion = connection.CreateCommand();
        _dataVersion.CommandText = "PRAGMA data_version";
        _dataVersion.Prepare();
        Audit = new AuditLog(this);
        Trust = new TrustStore(this);
        Config = new ConfigStore(this);
        Quarantine = new QuarantineStore(this);
        Catalog = new CatalogStore(this);
        Downloads = new DownloadStore(this);
        Groups = new GroupStore(this);
        Backup = new BackupStore(this);
        LearnedAddresses = new LearnedAddressStore(this);
    }

    /// <summary>Full path of the database file.</summary>
    public string Path { get; }

    /// <summary>The trust store: peers, blocklists and the authorization fast path.</summary>
    public TrustStore Trust { get; }

    /// <summary>The hash-chained audit log.</summary>
    public AuditLog Audit { get; }

    /// <summary>String key/value settings.</summary>
    public ConfigStore Config { get; }

    /// <summary>Records of downloads held in quarantine, with their audited state changes.</summary>
    public QuarantineStore Quarantine { get; }

    /// <summary>Shared paths and the catalog of indexed files.</summary>
    public CatalogStore Catalog { get; }

    /// <summary>Downloads in progress and their verified chunks.</summary>
    public DownloadStore Downloads { get; }

    /// <summary>Peer groups and who may see each share.</summary>
    public GroupStore Groups { get; }

    /// <summary>Backup: offers and blobs held for owners; this node's backed-up paths, versions, blobs and holders.</summary>
    public BackupStore Backup { get; }
    /// <summary>Addresses of trusted peers learned from identify and from other trusted peers (issue 17).</summary>
    public LearnedAddressStore LearnedAddresses { get; }

    /// <summary>The schema version this code creates and understands.</summary>
    public static int SupportedSchemaVersion => Migrations.LatestVersion;

    /// <summary>The clock every record's time is taken from (last seen, audit, learned addresses).</summary>
    public TimeProvider Time { get; }

    internal object Gate { get; } = new();

    /// <summary>Opens (creating if needed) <see cref="FileName"/> in <paramref name="dataDirectory"/>.</summary>
    public static SecureMeshDatabase Open(string dataDirectory, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataDirectory);
        // The same data directory the identity lives in, made the same way: owner-only whatever the umask, an existing
        // one of ours tightened to 0700, and a clear error when it cannot be created or written.
        Core.Identity.IdentityStore.EnsureDataDirectory(dataDirectory);
        return OpenFile(System.IO.Path.Combine(dataDirectory, FileName), time);
    }

    /// <summary>Opens (creating if needed) the database file at <paramref name="path"/>.</summary>
    public static SecureMeshDatabase OpenFile(string path, TimeProvider? time = null) =>
        OpenFile(path, time, Migrations.Steps);

    /// <summary>Opens with a given list of migration steps; tests use it to play an older or newer program.</summary>
    internal static SecureMeshDatabase OpenFile(string path, TimeProvider? time, IReadOnlyList<string> steps)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        path = System.IO.Path.GetFullPath(path);
        CheckFileIsSqliteOrAbsent(path);

        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = false,
            DefaultTimeout = BusyTimeoutMs / 1000,
        };
        var connection = new SqliteConnection(builder.ToString());
        try
        {
            connection.Open();
            Execute(connection, $"PRAGMA busy_timeout = {BusyTimeoutMs.ToString(CultureInfo.InvariantCulture)}");

            // Reading the header and schema touches every structure a corrupt file would break,
            // and writes nothing, so a file that is not ours is reported before it can be modified.
            int version;
            try
            {
                version = Convert.ToInt32(Scalar(connection, "PRAGMA user_version"), CultureInfo.InvariantCulture);
                _ = Scalar(connection, "SELECT count(*) FROM sqlite_master");
            }
            catch (SqliteException e) when (e.SqliteErrorCode is 26 /* NOTADB */ or 11 /* CORRUPT */)
            {
                throw NotADatabase(path, e);
            }
            if (version > steps.Count)
            {
                throw new SecureMeshException(SecureMeshErrorKind.Storage,
                    $"database schema version {version} is newer than this SecureMesh supports ({steps.Count}): {path}");
            }

            Execute(connection, "PRAGMA journal_mode = WAL");
            Execute(connection, "PRAGMA synchronous = FULL");
            Execute(connection, "PRAGMA foreign_keys = ON");
            // 32 MiB page cache (default 2 MiB): keeps the indexes of 100k peers and blocked IDs hot for Authorize.
            Execute(connection, "PRAGMA cache_size = -32768");
            Migrate(connection, path, steps);
            TightenMode(path);
            return new SecureMeshDatabase(path, connection, time ?? TimeProvider.System);
        }
        catch (SecureMeshException)
        {
            connection.Dispose();
            throw;
        }
        catch (SqliteException e)
        {
            connection.Dispose();
            throw new SecureMeshException(SecureMeshErrorKind.Storage, $"cannot open database {path}: {e.Message}", e);
        }
    }

    /// <summary>
    /// A number that changes whenever this database changes, whether through this object or another process.
    /// Compare for equality only; polling it is cheap (no disk access when nothing changed).
    /// </summary>
    public long ChangeStamp()
    {
        lock (Gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // data_version moves only for other connections' commits, so our own commits are counted here.
            return (long)_dataVersion.ExecuteScalar()! + _localCommits;
        }
    }

    /// <summary>Runs SQLite's integrity check; "ok" when the file is sound.</summary>
    public string IntegrityCheck()
    {
        lock (Gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            using var command = _connection.CreateCommand();
            command.CommandText = "PRAGMA integrity_check";
            using var reader = command.ExecuteReader();
            var lines = new List<string>();
            while (reader.Read())
            {
                lines.Add(reader.GetString(0));
            }
            return string.Join('\n', lines);
        }
    }

    /// <summary>The schema version of the open file.</summary>
    public int SchemaVersion()
    {
        lock (Gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return Convert.ToInt32(Scalar(_connection, "PRAGMA user_version"), CultureInfo.InvariantCulture);
        }
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => Close(checkpoint: true);

    /// <summary>
    /// Closes the file without the WAL checkpoint SQLite runs when the last connection closes (copying the WAL into the
    /// main file costs two fsyncs, at the end of every one-off command; issue 20). Nothing committed is lost:
    /// with <c>synchronous=FULL</c> every commit was fsynced into the WAL before it returned, and the next open reads the
    /// WAL (recovery) exactly as after a crash; SQLite's own checkpoints (every 1,000 pages of WAL) keep its size bounded.
    /// </summary>
    public void CloseWithoutCheckpoint() => Close(checkpoint: false);

    private void Close(bool checkpoint)
    {
        lock (Gate)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            if (!checkpoint && _connection.Handle is { } handle)
            {
                // SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE; a failure only means the checkpoint runs as usual.
                _ = SQLitePCL.raw.sqlite3_db_config(handle, NoCheckpointOnClose, 1, out _);
            }
            Trust.DisposeCommands();
            _dataVersion.Dispose();
            _connection.Dispose();
        }
    }

    private const int NoCheckpointOnClose = 1006;

    /// <summary>Runs <paramref name="read"/> on the connection under the lock.</summary>
    internal T Read<T>(Func<SqliteConnection, T> read)
    {
        lock (Gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            try
            {
                return read(_connection);
            }
            catch (SqliteException e)
            {
                throw StorageFailure(e);
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="write"/> in one IMMEDIATE transaction (taking the write lock up front, so two processes
    /// never deadlock upgrading a read). Any exception rolls everything back.
    /// </summary>
    internal T Write<T>(Func<SqliteTransaction, T> write)
    {
        lock (Gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            try
            {
                using var transaction = _connection.BeginTransaction(deferred: false);
                var result = write(transaction);
                transaction.Commit();
                _localCommits++;
                return result;
            }
            catch (SqliteException e)
            {
                throw StorageFailure(e);
            }
        }
    }

    /// <summary>Commits made through this object (read under <see cref="Gate"/>).</summary>
    internal long LocalCommits => _localCommits;

    internal long NowMs() => Time.GetUtcNow().ToUnixTimeMilliseconds();

    internal static SqliteCommand Command(SqliteTransaction transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = transaction.Connection!.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }
        return command;
    }

    internal static SqliteCommand Command(SqliteConnection connection, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value ?? DBNull.Value);
        }
        return command;
    }

    internal static int Execute(SqliteTransaction transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(transaction, sql, parameters);
        return command.ExecuteNonQuery();
    }

    internal static object? Scalar(SqliteTransaction transaction, string sql, params (string Name, object? Value)[] parameters)
    {
        using var command = Command(transaction, sql, parameters);
        var value = command.ExecuteScalar();
        return value is DBNull ? null : value;
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return command.ExecuteScalar();
    }

    private static void Migrate(SqliteConnection connection, string path, IReadOnlyList<string> steps)
    {
        if (Convert.ToInt32(Scalar(connection, "PRAGMA user_version"), CultureInfo.InvariantCulture) == steps.Count)
        {
            return;
        }
        using var transaction = connection.BeginTransaction(deferred: false);
        // Read again under the write lock: another process may have migrated meanwhile.
        var version = Convert.ToInt32(Scalar(transaction, "PRAGMA user_version"), CultureInfo.InvariantCulture);
        if (version > steps.Count)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage,
                $"database schema version {version} is newer than this SecureMesh supports ({steps.Count}): {path}");
        }
        for (var next = version + 1; next <= steps.Count; next++)
        {
            Execute(transaction, steps[next - 1]);
            // user_version lives in the file header, so it commits or rolls back with the step.
            Execute(transaction, $"PRAGMA user_version = {next.ToString(CultureInfo.InvariantCulture)}");
        }
        transaction.Commit();
    }

    private static void CheckFileIsSqliteOrAbsent(string path)
    {
        try
        {
            if (!File.Exists(path))
            {
                CreateOwnerOnly(path);
                return;
            }
            Span<byte> header = stackalloc byte[16];
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            var read = stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
            // SQLite treats an empty file as an empty database; anything else must carry its magic header.
            if (read != 0 && (read < header.Length || !header.SequenceEqual(SqliteMagic)))
            {
                throw NotADatabase(path, null);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage, $"cannot open database {path}: {e.Message}", e);
        }
    }

    private static void CreateOwnerOnly(string path)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.ReadWrite };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = OwnerOnly.Files;
        }
        try
        {
            using var _ = new FileStream(path, options);
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another process created it first; it goes through the same checks when opened.
        }
    }

    private static void TightenMode(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        try
        {
            if (File.GetUnixFileMode(path) != OwnerOnly.Files)
            {
                File.SetUnixFileMode(path, OwnerOnly.Files);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not our file to chmod (e.g. owned by another user): keep going; SQLite already opened it.
        }
    }

    private static SecureMeshException NotADatabase(string path, Exception? inner) =>
        new(SecureMeshErrorKind.Storage, $"{path} is not a SecureMesh database (not SQLite, or corrupt); it was left untouched", inner);

    private SecureMeshException StorageFailure(SqliteException e) =>
        new(SecureMeshErrorKind.Storage, $"database error in {Path}: {e.Message}", e);
}
