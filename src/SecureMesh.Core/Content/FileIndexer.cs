using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace SecureMesh.Core.Content;

/// <summary>Hashes a file into its <see cref="MerkleTree"/> without holding it in memory, using every core.</summary>
/// <remarks>
/// Each worker claims a batch of whole chunks (at least 4 MiB of file), reads it with one positional read into a pooled
/// buffer and hashes each chunk with the one-shot BLAKE3; leaf hashes land in one array by index, so the order of
/// completion does not matter. Progress is reported once per batch, always rising.
/// Memory is one batch buffer per worker plus 32 bytes per chunk (3.2 MB for 100 GB at 1 MiB chunks).
/// Given <see cref="KnownLeaves"/> (a download's check before release), only the chunks not among them are read and
/// hashed; a batch made only of known chunks is not read at all.
/// </remarks>
public static class FileIndexer
{
    // Each positional read covers at least this much file, so small chunk sizes do not cost a system call each.
    private const int MinBatchBytes = 4 * 1024 * 1024;

    /// <summary>The most chunks a file may have to be indexed or verified (<see cref="ChunkLayout.MaxChunkCount"/>).</summary>
    public const long MaxChunkCount = ChunkLayout.MaxChunkCount;

    /// <summary>Indexes the file at <paramref name="path"/> on worker threads; <paramref name="progress"/> gets the bytes hashed so far.</summary>
    public static Task<MerkleTree> IndexAsync(string path, int chunkSize = ChunkLayout.DefaultChunkSize,
        Action<long>? progress = null, CancellationToken cancellationToken = default) =>
        IndexAsync(path, chunkSize, null, progress, cancellationToken);

    /// <summary>
    /// As <see cref="IndexAsync(string, int, Action{long}?, CancellationToken)"/>, taking the leaf hashes of the chunks in
    /// <paramref name="known"/> as given instead of reading them (null: every chunk is read); <paramref name="progress"/>
    /// then counts only the bytes read and hashed.
    /// </summary>
    public static Task<MerkleTree> IndexAsync(string path, int chunkSize, KnownLeaves? known,
        Action<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Task.Run(() =>
        {
            using var handle = OpenRead(path);
            return Index(handle, chunkSize, progress, Environment.ProcessorCount, cancellationToken, known);
        }, cancellationToken);
    }

    /// <summary>Indexes an open file synchronously with up to <paramref name="maxDegreeOfParallelism"/> threads (the caller's included).</summary>
    public static MerkleTree Index(SafeFileHandle handle, int chunkSize = ChunkLayout.DefaultChunkSize,
        Action<long>? progress = null, int maxDegreeOfParallelism = 0, CancellationToken cancellationToken = default) =>
        Index(handle, chunkSize, progress, maxDegreeOfParallelism, cancellationToken, null);

    private static MerkleTree Index(SafeFileHandle handle, int chunkSize, Action<long>? progress, int maxDegreeOfParallelism,
        CancellationToken cancellationToken, KnownLeaves? known)
    {
        ArgumentNullException.ThrowIfNull(handle);
        if (!ChunkLayout.IsValidChunkSize(chunkSize))
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput, $"chunk size {chunkSize} is not a power of two between 16 KiB and 16 MiB");
        }
        long fileSize;
        try
        {
            fileSize = RandomAccess.GetLength(handle);
        }
        catch (IOException e)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage, $"cannot read the file size: {e.Message}", e);
        }
        var chunkCount = ChunkLayout.ChunkCount(fileSize, chunkSize);
        if (chunkCount > MaxChunkCount)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput,
                $"a file of {fileSize} bytes has too many {chunkSize}-byte chunks to index; use a larger chunk size");
        }

        if (known is not null && known.Known.ChunkCount != chunkCount)
        {
            throw new SecureMeshException(SecureMeshErrorKind.InvalidInput,
                $"the known leaf hashes are for {known.Known.ChunkCount} chunks; the file has {chunkCount}");
        }
        var state = new IndexState(handle, fileSize, chunkSize, (int)chunkCount, progress, cancellationToken, known);
        var workers = maxDegreeOfParallelism <= 0 ? Environment.ProcessorCount : maxDegreeOfParallelism;
        workers = (int)Math.Max(1, Math.Min(workers, state.BatchCount));
        var helpers = new Task[workers - 1];
        for (var i = 0; i < helpers.Length; i++)
        {
            // Pool threads rather than dedicated ones: their pooled buffers survive between indexing runs.
            helpers[i] = Task.Run(state.Work, cancellationToken);
        }
        Exception? failure = null;
        try
        {
            state.Work();
        }
        catch (Exception e)
        {
            // Rethrown below, once the helpers have stopped using the handle.
            failure = e;
            state.Stop();
        }
        try
        {
            Task.WaitAll(helpers, CancellationToken.None);
        }
        catch (AggregateException e) when (failure is null)
        {
            failure = e.InnerExceptions.FirstOrDefault(x => x is SecureMeshException)
                ?? e.InnerExceptions.FirstOrDefault(x => x is OperationCanceledException)
                ?? e.InnerExceptions[0];
        }
        catch (AggregateException)
        {
            // The caller's own failure is reported; the helpers stopped because of it.
        }
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(failure).Throw();
        }
        cancellationToken.ThrowIfCancellationRequested();

        long finalSize;
        try
        {
            finalSize = RandomAccess.GetLength(handle);
        }
        catch (IOException e)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage, $"cannot read the file size: {e.Message}", e);
        }
        if (finalSize != fileSize)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage, "the file changed size while it was being indexed");
        }
        return MerkleTree.BuildOwned(state.Leaves, fileSize, chunkSize);
    }

    private static SafeFileHandle OpenRead(string path)
    {
        try
        {
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage, $"cannot open '{path}' for indexing: {e.Message}", e);
        }
    }

    private sealed class IndexState
    {
        private readonly SafeFileHandle _handle;
        private readonly long _fileSize;
        private readonly int _chunkSize;
        private readonly int _chunkCount;
        private readonly int _chunksPerBatch;
        private readonly Action<long>? _progress;
        private readonly CancellationToken _cancellationToken;
        private readonly Lock _progressLock = new();
        private long _nextBatch;
        private long _bytesDone;
        private long _bytesReported;
        private volatile bool _stopped;

        private readonly KnownLeaves? _known;

        public IndexState(SafeFileHandle handle, long fileSize, int chunkSize, int chunkCount, Action<long>? progress,
            CancellationToken cancellationToken, KnownLeaves? known)
        {
            _known = known;
            _handle = handle;
            _fileSize = fileSize;
            _chunkSize = chunkSize;
            _chunkCount = chunkCount;
            _chunksPerBatch = Math.Max(1, MinBatchBytes / chunkSize);
            _progress = progress;
            _cancellationToken = cancellationToken;
            Leaves = new byte[chunkCount * MerkleHash.HashLength];
            BatchCount = ((chunkCount - 1) / _chunksPerBatch) + 1;
        }

        public byte[] Leaves { get; }

        public int BatchCount { get; }

        public void Stop() => _stopped = true;

        public void Work()
        {
            var buffer = ArrayPool<byte>.Shared.Rent(_chunksPerBatch * _chunkSize);
            try
            {
                while (!_stopped)
                {
                    _cancellationToken.ThrowIfCancellationRequested();
                    var batch = Interlocked.Increment(ref _nextBatch) - 1;
                    if (batch >= BatchCount)
                    {
                        return;
                    }
                    var firstChunk = (int)batch * _chunksPerBatch;
                    var chunks = Math.Min(_chunksPerBatch, _chunkCount - firstChunk);
                    var offset = (long)firstChunk * _chunkSize;
                    var length = (int)Math.Min((long)chunks * _chunkSize, _fileSize - offset);
                    if (CopyKnown(firstChunk, chunks))
                    {
                        continue;
                    }
                    var data = buffer.AsSpan(0, length);
                    ReadExactly(offset, data);
                    var hashed = 0;
                    for (var i = 0; i < chunks; i++)
                    {
                        if (_known?.Known.IsSet(firstChunk + i) == true)
                        {
                            continue;
                        }
                        var start = i * _chunkSize;
                        var chunk = data.Slice(start, Math.Min(_chunkSize, length - start));
                        MerkleHash.Leaf(chunk, Leaves.AsSpan((firstChunk + i) * MerkleHash.HashLength, MerkleHash.HashLength));
                        hashed += chunk.Length;
                    }
                    Report(hashed);
                }
            }
            catch
            {
                _stopped = true;
                throw;
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        /// <summary>Fills in the batch's known leaf hashes; true when every chunk of it was known (nothing to read).</summary>
        private bool CopyKnown(int firstChunk, int chunks)
        {
            if (_known is null)
            {
                return false;
            }
            var all = true;
            for (var i = firstChunk; i < firstChunk + chunks; i++)
            {
                all &= _known.TryCopy(i, Leaves.AsSpan(i * MerkleHash.HashLength, MerkleHash.HashLength));
            }
            return all;
        }

        private void ReadExactly(long offset, Span<byte> destination)
        {
            var done = 0;
            while (done < destination.Length)
            {
                int read;
                try
                {
                    read = RandomAccess.Read(_handle, destination[done..], offset + done);
                }
                catch (Exception e) when (e is IOException or NotSupportedException or UnauthorizedAccessException)
                {
                    throw new SecureMeshException(SecureMeshErrorKind.Storage, $"reading the file failed: {e.Message}", e);
                }
                if (read == 0)
                {
                    throw new SecureMeshException(SecureMeshErrorKind.Storage, "the file shrank while it was being indexed");
                }
                done += read;
            }
        }

        private void Report(int length)
        {
            var done = Interlocked.Add(ref _bytesDone, length);
            if (_progress is null)
            {
                return;
            }
            // Workers finish out of order; the lock keeps the reported figure rising.
            lock (_progressLock)
            {
                if (done > _bytesReported)
                {
                    _bytesReported = done;
                    _progress(done);
                }
            }
        }
    }
}
