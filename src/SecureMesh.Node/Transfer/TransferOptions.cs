using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace SecureMesh.Node.Transfer;

/// <summary>How the transfer engine serves and downloads.</summary>
public sealed class TransferOptions
{
    /// <summary>Chunk requests kept in flight per peer during a download.</summary>
    public int PipelineDepth { get; init; } = 8;

    /// <summary>How long a search, manifest or have request may take.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a chunk request may take before its chunk goes to another peer.</summary>
    public TimeSpan ChunkTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>How long the remote side has to send its hello.</summary>
    public TimeSpan HelloTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long one send may take before the connection is given up.</summary>
    public TimeSpan SendTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Timeouts after which a peer is dropped from a download.</summary>
    public int MaxTimeoutsPerPeer { get; init; } = 3;

    /// <summary>Chunks failing verification from one peer (over this process's life) after which it is blocked.</summary>
    public int BanAfterFailures { get; init; } = 3;

    /// <summary>Requests from one peer served at once; further requests wait (the connection stops being read).</summary>
    public int MaxConcurrentServes { get; init; } = 16;

    /// <summary>How long a file being served stays open after its last chunk was read (<see cref="ServedFiles"/>).</summary>
    public TimeSpan ServedFileIdle { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often verified chunks are made durable (fsync) and recorded.</summary>
    public TimeSpan FlushInterval { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// How long a download started while no trusted peer's session is ready waits for one before it fails: a node that
    /// has just started (or restarted) is still dialling its peers when a <c>get</c> reaches it.
    /// </summary>
    public TimeSpan PeerWait { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How often a running download looks for trusted peers that connected after it started; a peer that held none of
    /// the chunks, or did not answer, is asked again after ten of these.
    /// </summary>
    public TimeSpan JoinInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Per-peer upload limit in bytes per second; null reads the <c>upload-limit</c> setting (0: none).</summary>
    public long? UploadLimit { get; init; }

    /// <summary>How often the node checks whether who may see what changed (groups, audiences, trust, the catalog); a change then applies to open sessions and cuts transfers in flight.</summary>
    public TimeSpan AccessPollInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>The clock.</summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Where the engine logs.</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    /// <summary>
    /// Lanes per chunk request in flight to a peer (<see cref="PipelineDepth"/>): while some wait for replies, the others
    /// verify and write the replies that came in. Default 2; 1 (a test seam) makes each lane's request wait for its
    /// reply to be written, as before session 9.
    /// </summary>
    internal int LanesPerRequest { get; init; } = 2;

    /// <summary>Write verified chunks to the part file with direct I/O where the file system takes it (<see cref="PartFileWriter"/>); false: through the page cache.</summary>
    internal bool DirectWrites { get; init; } = true;

    /// <summary>Test seam: corrupts chunk bytes after the seeder's own check, just before sending (a lying seeder).</summary>
    internal ChunkTamper? TamperOutgoingChunk { get; init; }

    /// <summary>Test seam: the free bytes in the file system of a folder (default: statvfs through DriveInfo).</summary>
    internal Func<string, long>? FreeSpace { get; init; }

    /// <summary>Test seam: called for every chunk this node hashes again before serving it (index).</summary>
    internal Action<long>? ChunkRehashed { get; init; }

    /// <summary>Test seam: called with a download's part-file writer when it is opened.</summary>
    internal Action<PartFileWriter>? PartFileOpened { get; init; }

    /// <summary>Test seam: called for every chunk this node verified while downloading, before it is written (index).</summary>
    internal Action<long>? ChunkVerified { get; init; }

    /// <summary>Test seam: called for every chunk request this node serves (peer, content ID text, index).</summary>
    internal Action<string, string, long>? ChunkServed { get; init; }
}

/// <summary>Changes chunk <paramref name="index"/>'s bytes in place before they are sent.</summary>
internal delegate void ChunkTamper(long index, Span<byte> data);
