# The processes of hsu-spec-example.yaml as a Nomad job, written by `procman export --format nomad`.
# Check it with `nomad job validate spec-example.nomad.hcl`; see the warnings the export printed.
job "spec-example" {
  datacenters = ["*"]
  type        = "service"

  group "my-service" {
    count = 1

    network {
      port "my_service" {
        static = 8080
      }
    }

    reschedule {
      attempts  = 0
      unlimited = false
    }

    task "my-service" {
      driver       = "raw_exec"
      kill_timeout = "10s"

      config {
        command  = "/opt/service/my-service"
        args     = ["--port", "8080"]
        work_dir = "/opt/service"
      }

      env {
        SERVICE_ENV = "production"
      }

      restart {
        attempts = 3
        interval = "600s"
        delay    = "5s"
        mode     = "fail"
      }

      resources {
        memory = 512
      }

      service {
        name     = "my-service"
        port     = "my_service"
        provider = "nomad"
        address  = "localhost"

        check {
          type     = "http"
          path     = "/health"
          interval = "30s"
          timeout  = "5s"

          check_restart {
            limit = 3
            grace = "60s"
          }
        }
      }
    }
  }
}
