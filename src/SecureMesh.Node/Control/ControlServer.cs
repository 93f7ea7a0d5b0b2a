using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SecureMesh.Core;
using SecureMesh.Node.Discovery;
using SecureMesh.Storage;

namespace SecureMesh.Node.Control;

/// <summary>How the control server runs.</summary>
internal sealed class ControlServerOptions
{
    /// <summary>The data directory; the socket is <c>&lt;home&gt;/control.sock</c>.</summary>
    public required string Home { get; init; }

    /// <summary>Where the server logs (refused connections, failures).</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    /// <summary>The node's LAN discovery, so <c>config set discovery</c> applies at once.</summary>
    public DiscoveryService? Discovery { get; init; }

    /// <summary>Peers seen by beacon.</summary>
    public DiscoveredPeers? Discovered { get; init; }

    /// <summary>The transfer engine; when given, shares, search, downloads and quarantine are served too.</summary>
    public Transfer.TransferService? Transfer { get; init; }

    /// <summary>
    /// Extra endpoint groups (transfers, quarantine…), each mapped under <c>/v1</c>. They can take
    /// <see cref="MeshNode"/>, <see cref="SecureMeshDatabase"/> and <see cref="NodeControlService"/> from the services.
    /// </summary>
    public IReadOnlyList<Action<IEndpointRouteBuilder>> EndpointGroups { get; init; } = [];
}

/// <summary>
/// The control API: HTTP+JSON on the Unix socket <c>&lt;home&gt;/control.sock</c> (mode 0600, no TCP listener), served to
/// this user only: the kernel's <c>SO_PEERCRED</c> of every connection must match our effective uid.
/// The caller must hold the <see cref="NodeLock"/> of the home: a socket file found at start is then stale and is removed.
/// </summary>
internal sealed class ControlServer : IAsyncDisposable
{
    /// <summary>The socket's file name in the data directory.</summary>
    public const string FileName = "control.sock";

    private const UnixFileMode GroupOrOther =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
        UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    private readonly WebApplication _app;
    private int _refused;
    private int _disposed;

    private ControlServer(WebApplication app, string socketPath, NodeControlService service)
    {
        _app = app;
        SocketPath = socketPath;
        Service = service;
    }

    /// <summary>The socket path.</summary>
    public string SocketPath { get; }

    /// <summary>The operations behind the endpoints.</summary>
    public NodeControlService Service { get; }

    /// <summary>Connections refused because they came from another user.</summary>
    public int RefusedConnections => Volatile.Read(ref _refused);

    /// <summary>Where the control socket of <paramref name="home"/> lives.</summary>
    public static string SocketPathFor(string home) => Path.Combine(Path.GetFullPath(home), FileName);

    /// <summary>The JSON conventions of the API (camelCase, enums as camelCase strings); the client uses the same.</summary>
    public static JsonSerializerOptions Json { get; } = CreateJsonOptions();

    /// <summary>Binds the socket and starts serving.</summary>
    public static async Task<ControlServer> StartAsync(MeshNode node, SecureMeshDatabase db, ControlServerOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(options);
        var home = Path.GetFullPath(options.Home);
        var socketPath = SocketPathFor(home);
        var logger = options.LoggerFactory.CreateLogger("SecureMesh.Control");

        // The socket is created with the umask's mode and only then chmod-ed to 0600; the 0700 data directory is what
        // keeps other users away in between, so refuse to bind in a directory they can enter.
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(home) & GroupOrOther) != 0)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage,
                $"the data directory {home} is open to other users; 'chmod 700 {home}' before running the node");
        }
        // sockaddr_un holds 107 bytes of path plus the terminator.
        if (System.Text.Encoding.UTF8.GetByteCount(socketPath) > 107)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage,
                $"the control socket path {socketPath} is longer than a Unix socket allows (107 bytes); use a shorter --home");
        }
        if (File.Exists(socketPath) || Directory.Exists(socketPath))
        {
            File.Delete(socketPath);
            ControlLog.RemovedStale(logger, socketPath);
        }

        var service = new NodeControlService(home, db, node, options.Discovery, options.Discovered);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            // No appsettings.json watcher on the data directory.
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
            ContentRootPath = home,
        });
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(options.LoggerFactory);
        // The node handles SIGINT/SIGTERM itself; the web host must not.
        builder.Services.AddSingleton<IHostLifetime, QuietLifetime>();
        builder.Services.AddSingleton(node);
        builder.Services.AddSingleton(db);
        builder.Services.AddSingleton(service);
        builder.Services.AddSingleton(new GroupControlService(db, options.Transfer is { } access ? access.RefreshAccess : null));
        if (options.Transfer is { } transfer)
        {
            var transferControl = new TransferControlService(transfer);
            service.Transfers = transferControl;
            builder.Services.AddSingleton(transferControl);
        }
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
            o.SerializerOptions.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase));
        });
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);

        ControlServer? server = null;
        var owner = PeerCredentials.EffectiveUid();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = 64 * 1024;
            kestrel.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
            kestrel.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(30);
            kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(5);
            kestrel.ListenUnixSocket(socketPath, listen => listen.Use(next => connection =>
            {
                var socket = connection.Features.Get<IConnectionSocketFeature>()?.Socket;
                if (socket is null || !PeerCredentials.TryGet(socket, out var pid, out var uid))
                {
                    ControlLog.NoCredentials(logger);
                    if (server is not null)
                    {
                        Interlocked.Increment(ref server._refused);
                    }
                    connection.Abort();
                    return Task.CompletedTask;
                }
                if (uid != owner)
                {
                    ControlLog.RefusedUid(logger, uid, pid, owner);
                    if (server is not null)
                    {
                        Interlocked.Increment(ref server._refused);
                    }
                    connection.Abort();
                    return Task.CompletedTask;
                }
                return next(connection);
            }));
        });

        var app = builder.Build();
        app.Use(async (context, next) =>
        {
            try
            {
                await next(context);
            }
            catch (SecureMeshException e)
            {
                await WriteErrorAsync(context, logger, e.Kind, e.Message);
            }
            catch (BadHttpRequestException e)
            {
                await WriteErrorAsync(context, logger, SecureMeshErrorKind.InvalidInput, $"bad request: {e.Message}");
            }
            catch (JsonException e)
            {
                await WriteErrorAsync(context, logger, SecureMeshErrorKind.InvalidInput, $"bad JSON: {e.Message}");
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                ControlLog.RequestFailed(logger, context.Request.Method, context.Request.Path, e.Message);
                if (!context.Response.HasStarted)
                {
                    context.Response.StatusCode = StatusCodes.Status500InternalServerError;
                    await context.Response.WriteAsJsonAsync(new ErrorInfo($"internal error: {e.GetType().Name}", "internal"), Json, context.RequestAborted);
                }
            }
        });
        var v1 = app.MapGroup("/v1");
        StatusEndpoints.Map(v1);
        PeerEndpoints.Map(v1);
        BlockEndpoints.Map(v1);
        ConfigEndpoints.Map(v1);
        LogEndpoints.Map(v1);
        GroupEndpoints.Map(v1);
        if (options.Transfer is not null)
        {
            TransferEndpoints.Map(v1);
        }
        foreach (var group in options.EndpointGroups)
        {
            group(v1);
        }
        app.MapFallback(context => WriteErrorAsync(context, logger, SecureMeshErrorKind.NotFound, $"no such endpoint: {context.Request.Method} {context.Request.Path}"));

        server = new ControlServer(app, socketPath, service);
        try
        {
            await app.StartAsync(cancellationToken);
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(socketPath, OwnerOnly.Files);
            }
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
        ControlLog.Listening(logger, socketPath);
        return server;
    }

    /// <summary>The addresses Kestrel serves (only <c>http://unix:…</c>).</summary>
    internal IReadOnlyCollection<string> Addresses => [.. _app.Urls];

    /// <summary>The HTTP status for an error kind.</summary>
    public static int StatusFor(SecureMeshErrorKind kind) => kind switch
    {
        SecureMeshErrorKind.InvalidInput => StatusCodes.Status400BadRequest,
        SecureMeshErrorKind.Unauthorized => StatusCodes.Status403Forbidden,
        SecureMeshErrorKind.NotFound => StatusCodes.Status404NotFound,
        SecureMeshErrorKind.Conflict => StatusCodes.Status409Conflict,
        SecureMeshErrorKind.WrongPassphrase or SecureMeshErrorKind.Identity => StatusCodes.Status422UnprocessableEntity,
        SecureMeshErrorKind.Network or SecureMeshErrorKind.Protocol => StatusCodes.Status502BadGateway,
        _ => StatusCodes.Status500InternalServerError,
    };

    /// <summary>The wire name of an error kind (camelCase).</summary>
    public static string KindName(SecureMeshErrorKind kind) => JsonNamingPolicy.CamelCase.ConvertName(kind.ToString());

    private static async Task WriteErrorAsync(HttpContext context, ILogger logger, SecureMeshErrorKind kind, string message)
    {
        var status = StatusFor(kind);
        ControlLog.RequestRefused(logger, context.Request.Method, context.Request.Path, status, KindName(kind), message);
        if (context.Response.HasStarted)
        {
            return;
        }
        context.Response.Clear();
        context.Response.StatusCode = status;
        await context.Response.WriteAsJsonAsync(new ErrorInfo(message, KindName(kind)), Json, context.RequestAborted);
    }

    private static JsonSerializerOptions CreateJsonOptions()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        };
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.CamelCase));
        options.TypeInfoResolverChain.Add(ControlJsonContext.Default);
        options.TypeInfoResolverChain.Add(new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver());
        options.MakeReadOnly();
        return options;
    }

    /// <summary>Stops serving and removes the socket file.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
        {
            try
            {
                await _app.StopAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
            }
        }
        await _app.DisposeAsync();
        try
        {
            File.Delete(SocketPath);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>A host lifetime that leaves signals to the node.</summary>
    private sealed class QuietLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
