using System.Buffers;
using Microsoft.Win32.SafeHandles;

namespace SecureMesh.Core.Content;

/// <summary>Hashes a file into its <see cref="MerkleTree"/> without holding it in memory, using every core.</summary>
/// <remarks>
/// Each worker claims a batch of whole chunks (at least 4 MiB of file), reads it with one positional read into a pooled
/// buffer and hashes each chunk with the one-shot BLAKE3; leaf hashes land in one array by index, so the order of
/// completion does not matter. Progress is reported once per batch, always rising.
/// Memory is one batch buffer per worker plus 32 bytes per chunk (3.2 MB for 100 GB at 1 MiB chunks).
/// </remarks>
public static class FileIndexer
{
    // Each positional read covers at least this much file, so small chunk sizes do not cost a system call each.
    private const int MinBatchBytes = 4 * 1024 * 1024;

    // Leaf hashes are held in one array.
    private const long MaxChunkCount = int.MaxValue / MerkleHash.HashLength;

    /// <summary>Indexes the file at <paramref name="path"/> on worker threads; <paramref name="progress"/> gets the bytes hashed so far.</summary>
    public static Task<MerkleTree> IndexAsync(string path, int chunkSize = ChunkLayout.DefaultChunkSize,
        Action<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Task.Run(() =>
        {
            using var handle = OpenRead(path);
            return Index(handle, chunkSize, progress, Environment.ProcessorCount, cancellationToken);
        }, cancellationToken);
    }

    /// <summary>Indexes an open file synchronously with up to <paramref name="maxDegreeOfParallelism"/> threads (the caller's included).</summary>
    public static MerkleTree Index(SafeFileHandle handle, int chunkSize = ChunkLayout.DefaultChunkSize,
        Action<long>? progress = null, int maxDegreeOfParallelism = 0, CancellationToken cancellationToken = default)
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

        var state = new IndexState(handle, fileSize, chunkSize, (int)chunkCount, progress, cancellationToken);
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

        public IndexState(SafeFileHandle handle, long fileSize, int chunkSize, int chunkCount, Action<long>? progress, CancellationToken cancellationToken)
        {
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
                    var data = buffer.AsSpan(0, length);
                    ReadExactly(offset, data);
                    for (var i = 0; i < chunks; i++)
                    {
                        var start = i * _chunkSize;
                        var chunk = data.Slice(start, Math.Min(_chunkSize, length - start));
                        MerkleHash.Leaf(chunk, Leaves.AsSpan((firstChunk + i) * MerkleHash.HashLength, MerkleHash.HashLength));
                    }
                    Report(length);
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
